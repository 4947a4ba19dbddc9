"""Benchmark 2: turns per second with 40-token replies at 1, 10, 100 and 1000 players.

    python -m bench.bench_throughput [--levels 1,10,100,1000] [--duration 10] [--no-litellm]
                                     [--workers 1,2] [--think 4]

Each player is a closed loop (its next turn starts when the last one ended): over WebSocket to
npcbridge (one connection per player), or as a plain streaming HTTP client to LiteLLM's proxy, in
front of the same mock. The load generator is its own process. Reported: completed turns per
second in the measuring window, p50/p99 of the time outside the mock before the first token,
and errors (failed connections, error frames, HTTP errors, cut streams).

Also the server's CPU per turn: user + system CPU seconds of the server process tree (every
worker, LiteLLM's workers too) in the window, divided by the turns that ended in it. On a shared
machine it holds far better than turns/s, which other processes' load moves. ``--workers 1,2``
runs npcbridge with each worker count in turn (``npcbridge serve --workers N``).

``--think S``: players who pause between lines (exponentially, ``S`` seconds on average) instead
of a closed loop. A closed loop of 1,000 players asks for far more turns than the server can
serve, so its time to first token is the queue; with pauses the load is what that many players
offer, and the figure shows whether the number of connections slows a turn down. These rows go
to their own section (``2c``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from bench.common import (
    append_result,
    command_line,
    litellm,
    litellm_available,
    loadgen,
    mock,
    now,
    npcbridge,
    raise_nofile,
    workdir,
)

COLUMNS = [
    "date", "profile", "target", "players", "turns/s", "outside-mock TTFT p50 ms",
    "p99 ms", "errors", "npcbridge ÷ LiteLLM", "command",
]  # fmt: skip
CPU_SECTION = "2b. Server CPU per turn, 40-token replies"
THINK_SECTION = "2c. Players who pause between lines: time to first token by connections"
THINK_COLUMNS = [
    "date", "profile", "target", "workers", "players", "mean pause s", "turns/s",
    "server CPU ms/turn", "outside-mock TTFT p50 ms", "p99 ms", "errors", "command",
]  # fmt: skip
CPU_COLUMNS = [
    "date", "profile", "target", "workers", "players", "turns/s", "server CPU ms/turn",
    "turns per server CPU-second", "outside-mock TTFT p50 ms", "p99 ms", "errors", "command",
]  # fmt: skip


def _level(
    args: list[str], players: int, duration: float, pid: int, think: float
) -> dict[str, Any]:
    # 1000 players need a while to reach their steady state (the first round of turns all
    # start at once); the window opens after it
    warmup = 3.0 if players < 1000 else 15.0
    duration = duration if players < 1000 else max(duration, 15.0)
    return loadgen(
        [*args, "--players", str(players), "--duration", str(duration), "--warmup", str(warmup),
         "--cpu-pid", str(pid), "--think", str(think)]
    )  # fmt: skip


def run(
    profile: str,
    levels: list[int],
    duration: float,
    with_litellm: bool,
    workers: list[int],
    think: float = 0.0,
) -> list[dict]:
    """Run every level against npcbridge (each worker count), then LiteLLM; print and record."""
    rows: list[dict[str, Any]] = []
    with workdir("throughput") as tmp, mock(profile, tmp) as (_m, upstream):
        for count in workers:
            run_dir = tmp / f"workers-{count}"
            run_dir.mkdir()
            with npcbridge(upstream, run_dir, workers=count) as (server, ws_url):
                for n in levels:
                    level = _level(["players", "--ws", ws_url], n, duration, server.pid, think)
                    rows.append({"target": "npcbridge", "workers": count, **level})
                    print(json.dumps(rows[-1]), flush=True)
        if with_litellm and litellm_available():
            with litellm(upstream, tmp) as (proxy_proc, proxy):
                for n in levels:
                    level = _level(["players", "--sse", proxy], n, duration, proxy_proc.pid, think)
                    rows.append({"target": "litellm-proxy", "workers": os.cpu_count(), **level})
                    print(json.dumps(rows[-1]), flush=True)
    if think > 0:
        for r in rows:
            append_result(
                THINK_SECTION,
                THINK_COLUMNS,
                [now(), profile, r["target"], r["workers"], r["players"], think, r["turns_per_s"],
                 r.get("cpu_ms_per_turn"), r["overhead"]["p50"], r["overhead"]["p99"],
                 r["errors"], f"`{command_line()}`"],
            )  # fmt: skip
        return rows
    proxy_rate = {r["players"]: r["turns_per_s"] for r in rows if r["target"] == "litellm-proxy"}
    for r in rows:
        ratio = ""
        if r["target"] == "npcbridge" and proxy_rate.get(r["players"]):
            ratio = f"{r['turns_per_s'] / proxy_rate[r['players']]:.2f}×"
        target = r["target"] if r["workers"] == 1 else f"{r['target']} ({r['workers']} workers)"
        append_result(
            "2. Turns per second, 40-token replies",
            COLUMNS,
            [now(), profile, target, r["players"], r["turns_per_s"], r["overhead"]["p50"],
             r["overhead"]["p99"], r["errors"], ratio, f"`{command_line()}`"],
        )  # fmt: skip
        cpu_ms = r.get("cpu_ms_per_turn")
        append_result(
            CPU_SECTION,
            CPU_COLUMNS,
            [now(), profile, r["target"], r["workers"], r["players"], r["turns_per_s"], cpu_ms,
             round(1000 / cpu_ms, 1) if cpu_ms else "", r["overhead"]["p50"],
             r["overhead"]["p99"], r["errors"], f"`{command_line()}`"],
        )  # fmt: skip
    return rows


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_throughput")
    parser.add_argument("--levels", default="1,10,100,1000")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--profiles", default="groq-750")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--workers", default="1", help="npcbridge worker counts, e.g. 1,2")
    parser.add_argument(
        "--think", type=float, default=0.0, help="players' mean pause between lines (s)"
    )
    args = parser.parse_args()
    raise_nofile()
    levels = [int(x) for x in args.levels.split(",")]
    workers = [int(x) for x in args.workers.split(",")]
    for profile in args.profiles.split(","):
        run(profile, levels, args.duration, not args.no_litellm, workers, args.think)


if __name__ == "__main__":
    main()
