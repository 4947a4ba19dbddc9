"""Load generator for ``bench_http``: the same turn over WebSocket, HTTP long-poll and SSE.

    python -m bench.loadgen_http --ws WS_URL --direct BASE_URL --server-pid PID \
        [--rounds 200] [--cpu-turns 400] [--cpu-players 10]

Runs in its own process and prints one JSON line. Phase 1 (time to first token, concurrency 1):
the paths in turn, shuffled each round, each request's time outside the mock from the stamps in
its first token (as ``bench.loadgen ttft``). Phase 2 (server CPU per turn): each transport on its
own, ``--cpu-players`` clients in a closed loop until ``--cpu-turns`` turns ended; the server
process's CPU time (``/proc/PID/stat`` utime + stime) over the phase divided by its turns.

The HTTP clients are what a sandboxed mod does: long-poll = ``POST say`` then ``GET
messages?cursor=&wait=10&merge=1`` until ``reply.end`` (a Luanti mod's ``fetch_async``
loop); SSE = one ``GET events`` stream per session, the ``say`` POSTed beside it (Roblox's
``WebStreamClient``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import alternating
from bench.loadgen import sdk_turn, ws_player, ws_turn
from npcbridge.testing.fake_upstream import parse_stamps

HELLO = {"type": "hello", "protocol": 1, "client": "bench/loadgen-http"}
Turn = Callable[[int], Awaitable[float | None]]


def say(request_id: int, player: str) -> dict[str, Any]:
    """The turn every path takes."""
    return {
        "type": "say",
        "id": request_id,
        "npc": "blacksmith",
        "player": f"{player}-{request_id}",
        "text": "Hello there, smith.",
    }


class FirstToken:
    """Follows one reply's frames: the time outside the mock of its first token, and its end."""

    def __init__(self, request_id: int, t0: int) -> None:
        self.request_id, self.t0 = request_id, t0
        self.overhead: float | None = None
        self.ended = False
        self.failed = False

    def see(self, frame: dict[str, Any], now: int) -> None:
        if frame.get("id") != self.request_id:
            return
        kind = frame.get("type")
        if kind == "reply.delta" and self.overhead is None:
            stamps = parse_stamps(frame["text"])
            if stamps:
                arrival, sent = stamps[0]
                self.overhead = ((now - self.t0) - (sent - arrival)) / 1e6
        elif kind == "reply.end":
            self.ended, self.failed = True, frame.get("finish") != "stop"
        elif kind == "error":
            self.ended = self.failed = True


class HttpClient:
    """One HTTP-transport session on a kept-alive connection."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.key = ""
        self.cursor = 0
        self.name = f"h{id(self)}"

    async def open(self) -> HttpClient:
        async with self.http.post(f"{self.base}/v1/sessions", json=HELLO) as answer:
            self.key = (await answer.json())["session"]
        return self

    async def post(self, message: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(
            f"{self.base}/v1/sessions/{self.key}/messages", json=message
        ) as answer:
            return dict(await answer.json())

    async def poll_turn(self, request_id: int) -> float | None:
        """``POST say``, then long-polls until ``reply.end``."""
        reply = FirstToken(request_id, time.monotonic_ns())
        for frame in (await self.post(say(request_id, self.name)))["messages"]:
            reply.see(frame, time.monotonic_ns())
        url = f"{self.base}/v1/sessions/{self.key}/messages"
        while not reply.ended:
            query = {"cursor": str(self.cursor), "wait": "10", "merge": "1"}
            async with self.http.get(url, params=query) as answer:
                page = await answer.json()
            now = time.monotonic_ns()
            self.cursor = page["cursor"]
            for frame in page["messages"]:
                reply.see(frame, now)
        return None if reply.failed else reply.overhead


class SseClient(HttpClient):
    """An HTTP-transport session read through one event stream."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        super().__init__(http, base)
        self.replies: dict[int, tuple[FirstToken, asyncio.Event]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> SseClient:
        await super().open()
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        url = f"{self.base}/v1/sessions/{self.key}/events"
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as stream:
            async for line in stream.content:
                if not line.startswith(b"data: "):
                    continue
                now = time.monotonic_ns()
                frame = json.loads(line[6:])
                found = self.replies.get(frame.get("id"))  # type: ignore[arg-type]
                if found is not None:
                    found[0].see(frame, now)
                    if found[0].ended:
                        found[1].set()

    async def sse_turn(self, request_id: int) -> float | None:
        """``POST say``; the reply arrives on the stream."""
        reply, done = FirstToken(request_id, time.monotonic_ns()), asyncio.Event()
        self.replies[request_id] = (reply, done)
        await self.post(say(request_id, self.name))
        await asyncio.wait_for(done.wait(), 30)
        del self.replies[request_id]
        return None if reply.failed else reply.overhead

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def transports(args: argparse.Namespace, http: aiohttp.ClientSession) -> dict[str, Turn]:
    """One client per path; each entry runs one turn by request id."""
    ws = await ws_player(args.ws)
    base = args.ws.replace("ws://", "http://").rstrip("/")
    poller = await HttpClient(http, base).open()
    streamer = await SseClient(http, base).open()
    return {
        "websocket": lambda rid: ws_turn(ws, rid, None),
        "http-long-poll": poller.poll_turn,
        "http-sse": streamer.sse_turn,
    }


async def phase_ttft(args: argparse.Namespace, http: aiohttp.ClientSession) -> dict[str, Any]:
    import openai

    targets = await transports(args, http)
    direct = openai.AsyncOpenAI(base_url=args.direct, api_key="sk-bench", max_retries=0)
    targets["openai-sdk-direct"] = lambda rid: sdk_turn(direct)
    ids = itertools.count(1)

    def numbered(turn: Turn) -> Callable[[], Awaitable[float | None]]:
        return lambda: turn(next(ids))

    turns = {name: numbered(turn) for name, turn in targets.items()}
    return await alternating(turns, args.rounds, args.warmup)


async def phase_cpu(args: argparse.Namespace, http: aiohttp.ClientSession) -> dict[str, Any]:
    ids = itertools.count(1_000_000)
    clients = [await transports(args, http) for _ in range(args.cpu_players)]
    figures: dict[str, Any] = {}
    for name in clients[0]:
        done = errors = 0

        async def player(turn: Turn) -> None:
            nonlocal done, errors
            while done + errors < args.cpu_turns:
                try:
                    ok = await turn(next(ids)) is not None
                except Exception:
                    ok = False
                done, errors = done + ok, errors + (not ok)

        await asyncio.gather(*(player(c[name]) for c in clients[:2]))  # warm up
        done = errors = 0
        started, cpu0 = time.monotonic(), cpu_seconds(args.server_pid)
        await asyncio.gather(*(player(c[name]) for c in clients))
        cpu, wall = cpu_seconds(args.server_pid) - cpu0, time.monotonic() - started
        figures[name] = {
            "turns": done,
            "errors": errors,
            "cpu_ms_per_turn": round(cpu * 1000 / max(done, 1), 3),
            "turns_per_s": round(done / wall, 1),
        }
    return figures


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        ttft = await phase_ttft(args, http)
        cpu = await phase_cpu(args, http)
    return {**ttft, "cpu": cpu}


def main() -> int:
    """Command line."""
    from bench.common import raise_nofile

    raise_nofile()
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen_http")
    parser.add_argument("--ws", required=True)
    parser.add_argument("--direct", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--cpu-turns", type=int, default=400)
    parser.add_argument("--cpu-players", type=int, default=10)
    result = asyncio.run(main_async(parser.parse_args()))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
