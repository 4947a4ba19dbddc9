"""Load generator for the benchmarks; runs in its own process and prints one JSON line.

Modes::

    python -m bench.loadgen ttft --bridge WS_URL --direct BASE_URL [--litellm BASE_URL] --rounds N
    python -m bench.loadgen players --ws WS_URL | --sse BASE_URL --players N --duration S
                                    [--think S]
    python -m bench.loadgen idle --ws WS_URL --conns N

Time outside the mock is measured with the stamps the mock puts into every token (the fake
upstream's ``stamp_tokens``, see ``npcbridge.testing.fake_upstream``): for a request sent at
``t0`` whose first token was received at ``t1``, ``overhead = (t1 - t0) - (sent_ns -
arrival_ns)`` of that first token, i.e. the time to first token minus the mock's own time to
first token. For every token, ``delay = received - sent_ns``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

from bench.common import BENCH_KEY, alternating
from npcbridge.protocol import encode
from npcbridge.testing.fake_upstream import parse_stamps

MODEL = "llama-3.1-8b-instant"
HELLO = encode({"type": "hello", "protocol": 1, "client": "bench/loadgen"})


class Stats:
    """What one run observed."""

    def __init__(self) -> None:
        self.turns = 0
        self.ended = 0
        self.errors = 0
        self.error_kinds: dict[str, int] = {}
        self.overhead_ms: list[float] = []
        self.token_delay_ms: list[float] = []
        self.frames = 0
        self.tokens = 0

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def token_times(self, text: str, received_ns: int) -> None:
        stamps = parse_stamps(text)
        self.tokens += len(stamps)
        self.token_delay_ms.extend((received_ns - sent) / 1e6 for _, sent in stamps)


# ------------------------------------------------------------------------------- npcbridge


async def ws_player(url: str) -> ClientConnection:
    """A connected client that has said hello."""
    ws = await connect(url, max_size=None, compression=None, ping_interval=None, open_timeout=60)
    await ws.send(HELLO)
    welcome = msgpack.unpackb(await ws.recv())
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"no welcome: {welcome}")
    return ws


#: "fresh": a new player name every turn (no conversation history, no background summaries);
#: "sticky": one player per connection whose history grows (what a long session looks like)
PLAYER_MODE = "fresh"


async def ws_turn(ws: ClientConnection, request_id: int, stats: Stats | None) -> float | None:
    """One ``say`` to the end; returns the overhead (ms) or None on error."""
    player = f"p{id(ws)}" if PLAYER_MODE == "sticky" else f"p{id(ws)}-{request_id}"
    t0 = time.monotonic_ns()
    await ws.send(
        encode(
            {
                "type": "say",
                "id": request_id,
                "npc": "blacksmith",
                "player": player,
                "text": "Hello there, smith.",
            }
        )
    )
    overhead: float | None = None
    while True:
        frame = msgpack.unpackb(await ws.recv())
        now = time.monotonic_ns()
        kind = frame.get("type")
        if frame.get("id") != request_id:
            continue
        if kind == "reply.delta":
            if stats is not None:
                stats.frames += 1
                stats.token_times(frame["text"], now)
            if overhead is None:
                stamps = parse_stamps(frame["text"])
                if stamps:
                    arrival, sent = stamps[0]
                    overhead = ((now - t0) - (sent - arrival)) / 1e6
        elif kind == "reply.end":
            if frame.get("finish") != "stop":
                if stats is not None:
                    stats.error(f"finish:{frame.get('finish')}")
                return None
            return overhead
        elif kind == "error":
            if stats is not None:
                stats.error(str(frame.get("code")))
            return None


# ------------------------------------------------------------------------------- SSE


def sse_body() -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are Brom, the village blacksmith."},
            {"role": "user", "content": "Hello there, smith."},
        ],
        "stream": True,
    }


async def sse_turn(session: Any, base_url: str, stats: Stats | None) -> float | None:
    """One streamed chat completion over plain HTTP (aiohttp; a light client)."""
    t0 = time.monotonic_ns()
    overhead: float | None = None
    async with session.post(
        f"{base_url}/chat/completions",
        json=sse_body(),
        headers={"Authorization": f"Bearer {BENCH_KEY}"},
    ) as response:
        if response.status != 200:
            if stats is not None:
                stats.error(f"http:{response.status}")
            await response.read()
            return None
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            payload = line[6:].strip()
            if payload == b"[DONE]":
                break
            now = time.monotonic_ns()
            chunk = json.loads(payload)
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    if stats is not None:
                        stats.frames += 1
                        stats.token_times(text, now)
                    if overhead is None:
                        stamps = parse_stamps(text)
                        if stamps:
                            arrival, sent = stamps[0]
                            overhead = ((now - t0) - (sent - arrival)) / 1e6
    return overhead


async def sdk_turn(client: Any) -> float | None:
    """One streamed chat completion with the ``openai`` SDK (what a game would otherwise do)."""
    t0 = time.monotonic_ns()
    overhead: float | None = None
    stream = await client.chat.completions.create(
        model=MODEL, messages=sse_body()["messages"], stream=True
    )
    async for chunk in stream:
        now = time.monotonic_ns()
        for choice in chunk.choices:
            text = choice.delta.content if choice.delta else None
            if text and overhead is None:
                stamps = parse_stamps(text)
                if stamps:
                    arrival, sent = stamps[0]
                    overhead = ((now - t0) - (sent - arrival)) / 1e6
    return overhead


# ------------------------------------------------------------------------------- modes


async def mode_ttft(args: argparse.Namespace) -> dict[str, Any]:
    """Concurrency 1, the targets in turn (A B C A B C ...) so drift hits all alike."""
    import openai

    targets: dict[str, Any] = {}
    ws = await ws_player(args.bridge)
    ids = itertools.count(1)
    targets["npcbridge"] = lambda: ws_turn(ws, next(ids), None)
    direct = openai.AsyncOpenAI(base_url=args.direct, api_key=BENCH_KEY, max_retries=0)
    targets["openai-sdk-direct"] = lambda: sdk_turn(direct)
    if args.litellm:
        proxy = openai.AsyncOpenAI(base_url=args.litellm, api_key=BENCH_KEY, max_retries=0)
        targets["litellm-proxy"] = lambda: sdk_turn(proxy)
    result = await alternating(targets, args.rounds, args.warmup)
    await ws.close()
    return result


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every live descendant (``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        pending.extend(int(child) for child in children)
    return total


async def pause(think_s: float) -> None:
    """A player's pause after a reply before its next line: none in a closed loop (``think_s``
    0), else exponentially distributed with mean ``think_s`` (players who read, then talk)."""
    if think_s > 0:
        await asyncio.sleep(random.expovariate(1 / think_s))


async def mode_players(args: argparse.Namespace) -> dict[str, Any]:
    """N players in a closed loop (each sends its next turn when the last one ended, or after a
    pause of ``--think`` seconds on average)."""
    stats = Stats()
    measuring = False
    stop = False
    connect_errors = 0

    if args.ws:
        sem = asyncio.Semaphore(100)

        async def open_one() -> ClientConnection | None:
            nonlocal connect_errors
            async with sem:
                try:
                    return await ws_player(args.ws)
                except Exception:
                    connect_errors += 1
                    return None

        conns = [c for c in await asyncio.gather(*(open_one() for _ in range(args.players))) if c]

        async def player(ws: ClientConnection) -> None:
            ids = itertools.count(1)
            await asyncio.sleep(random.random() * 0.2)
            while not stop:
                counted = measuring
                try:
                    overhead = await ws_turn(ws, next(ids), stats if counted else None)
                except Exception as exc:
                    if counted and not stop:
                        stats.error(type(exc).__name__)
                    return
                if measuring and overhead is not None:
                    stats.ended += 1
                if counted and measuring and overhead is not None:
                    stats.turns += 1
                    stats.overhead_ms.append(overhead)
                await pause(args.think)

        workers = [asyncio.create_task(player(ws)) for ws in conns]
        closers = conns
    else:
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=120),
        )

        async def sse_player() -> None:
            await asyncio.sleep(random.random() * 0.2)
            while not stop:
                counted = measuring
                try:
                    overhead = await sse_turn(session, args.sse, stats if counted else None)
                except Exception as exc:
                    if counted and not stop:
                        stats.error(type(exc).__name__)
                    await asyncio.sleep(0.05)
                    continue
                if measuring and overhead is not None:
                    stats.ended += 1
                if counted and measuring and overhead is not None:
                    stats.turns += 1
                    stats.overhead_ms.append(overhead)
                await pause(args.think)

        workers = [asyncio.create_task(sse_player()) for _ in range(args.players)]
        closers = []
    await asyncio.sleep(args.warmup)
    measuring = True
    started = time.monotonic()
    cpu_started = process_tree_cpu_s(args.cpu_pid) if args.cpu_pid else 0.0
    await asyncio.sleep(args.duration)
    measuring = False
    cpu_s = process_tree_cpu_s(args.cpu_pid) - cpu_started if args.cpu_pid else 0.0
    elapsed = time.monotonic() - started
    stop = True
    await asyncio.wait(workers, timeout=30)
    for task in workers:
        task.cancel()
    for ws in closers:
        await ws.close()
    if not args.ws:
        await session.close()
    result = {
        "players": args.players,
        "think_s": args.think,
        "connected": len(closers) if args.ws else args.players,
        "connect_errors": connect_errors,
        "turns": stats.turns,
        "seconds": round(elapsed, 3),
        "turns_per_s": round(stats.turns / elapsed, 1),
        "errors": stats.errors + connect_errors,
        "error_kinds": stats.error_kinds,
        "frames": stats.frames,
        "tokens": stats.tokens,
    }
    if args.cpu_pid:
        # every turn that ended in the window (also those begun before it) against the server's
        # CPU in the window: user + system seconds of the server process and its workers
        result["server_cpu_s"] = round(cpu_s, 3)
        result["ended"] = stats.ended
        result["cpu_ms_per_turn"] = round(cpu_s * 1000 / stats.ended, 3) if stats.ended else None
    if args.samples:
        result["overhead_ms"] = stats.overhead_ms
        result["token_delay_ms"] = stats.token_delay_ms
    else:
        from bench.common import summary

        result["overhead"] = summary(stats.overhead_ms)
        result["token_delay"] = summary(stats.token_delay_ms)
    return result


async def mode_idle(args: argparse.Namespace) -> dict[str, Any]:
    """Open N connections, say hello on each, report, and hold them until stdin closes."""
    sem = asyncio.Semaphore(200)
    failed = 0

    async def open_one() -> ClientConnection | None:
        nonlocal failed
        async with sem:
            try:
                return await ws_player(args.ws)
            except Exception:
                failed += 1
                return None

    conns = [c for c in await asyncio.gather(*(open_one() for _ in range(args.conns))) if c]
    sys.stdout.write(json.dumps({"open": len(conns), "failed": failed}) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return {"closed": len(conns)}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the mode and run it."""
    from bench.common import raise_nofile

    raise_nofile()
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("ttft")
    p.add_argument("--bridge", required=True)
    p.add_argument("--direct", required=True)
    p.add_argument("--litellm")
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p = sub.add_parser("players")
    p.add_argument("--ws")
    p.add_argument("--sse")
    p.add_argument("--players", type=int, default=10)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--samples", action="store_true", help="print raw samples, not summaries")
    p.add_argument("--player-mode", choices=["fresh", "sticky"], default="fresh")
    p.add_argument("--cpu-pid", type=int, help="report this process tree's CPU per turn")
    p.add_argument("--think", type=float, default=0.0, help="mean pause between a player's turns")
    p = sub.add_parser("idle")
    p.add_argument("--ws", required=True)
    p.add_argument("--conns", type=int, default=1000)
    args = parser.parse_args(argv)
    global PLAYER_MODE
    PLAYER_MODE = getattr(args, "player_mode", "fresh")
    mode = {"ttft": mode_ttft, "players": mode_players, "idle": mode_idle}[args.mode]
    result = asyncio.run(mode(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
