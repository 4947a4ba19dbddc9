"""Benchmark 8: time to first audio of a voiced reply, at concurrency 1 and 50.

    python -m bench.bench_voice [--turns 120] [--levels 1,50] [--tts-first-byte-ms 150]

The mock upstream streams the reply at the groq-750 profile (50 ms to the first token, 750
tokens/s) and answers ``/audio/speech`` after ``--tts-first-byte-ms`` (Groq's text-to-speech:
130–200 ms to the first byte). Every turn is the same voiced ``say``; its first spoken unit
("Aye, lad, leave it on the anvil.") is complete when its 7th token arrives. The time to first
audio a client sees (``say`` sent → first ``reply.audio`` received) is compared with what the
upstream alone needs: TTFT + the 7 tokens of the first unit + the TTS first byte. "Added" is
the difference (p50, p99). CPU per voiced turn is the server process's user+system time over
the level, divided by its turns; the same reply without voice, one turn at a time, gives the
text-only CPU per turn beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from bench.common import (
    PROFILES,
    PY,
    Proc,
    append_result,
    command_line,
    now,
    npcbridge,
    percentile,
    raise_nofile,
    workdir,
)
from npcbridge.client import Client

LINE = (
    "[[reply:Aye, lad, leave it on the anvil. I'll have it sharp by dawn, so come back then. "
    "Mind the sparks on your way out.]]"
)
#: tokens (words with their trailing space) up to and including the end of the first unit
FIRST_UNIT_TOKENS = 7
PROFILE = "groq-750"
COLUMNS = [
    "date", "players", "turns", "tts first byte ms", "expected ms", "ttfa p50 ms",
    "ttfa p99 ms", "added p50 ms", "added p99 ms", "server CPU ms / voiced turn",
    "server CPU ms / text turn", "errors", "command",
]  # fmt: skip


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def text_turns(url: str, turns: int) -> None:
    """``turns`` of the same ``say`` without voice, one after the other (the CPU baseline)."""
    async with await Client.connect(url) as client:
        for _ in range(turns):
            await (await client.say("blacksmith", "p-text", LINE, urgency="realtime")).text()


async def voiced_turn(client: Client) -> float:
    """One voiced ``say``; the ms from sending it to its first audio frame."""
    started = time.perf_counter()
    reply = await client.say_audio("blacksmith", f"p{id(client)}", LINE, urgency="realtime")
    first: float | None = None
    async for _frame in reply.audio():
        if first is None:
            first = (time.perf_counter() - started) * 1000
    if first is None or reply.end is None or "error" in reply.end.get("voice", {}):
        raise RuntimeError(f"no audio: {reply.end}")
    return first


async def level(url: str, players: int, turns: int) -> tuple[list[float], int]:
    """``turns`` voiced turns spread over ``players`` concurrent clients."""
    samples: list[float] = []
    errors = 0
    clients = [await Client.connect(url) for _ in range(players)]

    async def play(client: Client, count: int) -> None:
        nonlocal errors
        for _ in range(count):
            try:
                samples.append(await voiced_turn(client))
            except Exception:
                errors += 1

    per = max(1, turns // players)
    await asyncio.gather(*(voiced_turn(c) for c in clients))  # warm-up, not counted
    await asyncio.gather(*(play(c, per) for c in clients))
    for client in clients:
        await client.close()
    return samples, errors


def run(levels: list[int], turns: int, tts_ms: float) -> None:
    """Run every level against one mock and one server; print and record the figures."""
    ttft_ms, tps = PROFILES[PROFILE]
    expected = ttft_ms + FIRST_UNIT_TOKENS * 1000 / tps + tts_ms
    with workdir("voice") as tmp:
        mock = Proc(
            [PY, "-m", "npcbridge.testing.fake_upstream", "--ttft-ms", str(ttft_ms),
             "--tokens-per-s", str(tps), "--tts-first-byte-ms", str(tts_ms)],
            log=tmp / "mock.log",
        )  # fmt: skip
        try:
            upstream = str(mock.read_json_line()["base_url"])
            with npcbridge(upstream, tmp) as (server, ws_url):
                before = cpu_s(server.pid)
                asyncio.run(text_turns(ws_url, turns))
                text_cpu = (cpu_s(server.pid) - before) * 1000 / turns
                for players in levels:
                    before = cpu_s(server.pid)
                    samples, errors = asyncio.run(level(ws_url, players, turns))
                    warm = players  # the warm-up turns count as server work too
                    cpu_ms = (cpu_s(server.pid) - before) * 1000 / max(1, len(samples) + warm)
                    _record(players, samples, errors, tts_ms, expected, (cpu_ms, text_cpu))
        finally:
            mock.stop()


def _record(
    players: int,
    samples: list[float],
    errors: int,
    tts_ms: float,
    expected: float,
    cpu: tuple[float, float],
) -> None:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    figures: dict[str, Any] = {
        "players": players,
        "turns": len(samples),
        "expected_ms": round(expected, 1),
        "ttfa_p50": round(p50, 1),
        "ttfa_p99": round(p99, 1),
        "added_p50": round(p50 - expected, 1),
        "added_p99": round(p99 - expected, 1),
        "cpu_ms_per_turn": round(cpu[0], 2),
        "cpu_ms_per_text_turn": round(cpu[1], 2),
        "errors": errors,
    }
    append_result(
        "8. Time to first audio (voiced replies)",
        COLUMNS,
        [now(), players, len(samples), tts_ms, figures["expected_ms"], figures["ttfa_p50"],
         figures["ttfa_p99"], figures["added_p50"], figures["added_p99"],
         figures["cpu_ms_per_turn"], figures["cpu_ms_per_text_turn"], errors,
         f"`{command_line()}`"],
    )  # fmt: skip
    print(json.dumps({"bench": "voice", **figures}))


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_voice")
    parser.add_argument("--turns", type=int, default=120, help="counted turns per level")
    parser.add_argument("--levels", default="1,50")
    parser.add_argument("--tts-first-byte-ms", type=float, default=150.0)
    args = parser.parse_args()
    raise_nofile()
    run([int(n) for n in args.levels.split(",")], args.turns, args.tts_first_byte_ms)


if __name__ == "__main__":
    main()
