"""Benchmark 7: the HTTP transport beside WebSocket: added time to first token and server CPU
per turn.

    python -m bench.bench_http [--rounds 200] [--cpu-turns 400] [--cpu-players 10]
                               [--profiles groq-750]

One server, one mock; the load generator (``bench/loadgen_http.py``, its own process) takes the
same turn over WebSocket, HTTP long-poll (``POST say`` + ``GET messages?wait=10&merge=1``),
HTTP server-sent events, and the ``openai`` SDK straight to the mock (the baseline). Added TTFT
is as in benchmark 1: the same quantile of a path minus that of the direct SDK, at concurrency 1,
the paths shuffled each round. Server CPU per turn: each transport alone, ``--cpu-players``
clients in a closed loop, the server process's utime + stime over the phase divided by the
turns it served (the mock and the load generator are other processes).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.bench_ttft import added_ttft
from bench.common import (
    append_result,
    command_line,
    loadgen,
    mock,
    now,
    npcbridge,
    raise_nofile,
    workdir,
)

COLUMNS = [
    "date", "profile", "path", "n", "outside-mock p50 ms", "outside-mock p99 ms",
    "added p50 ms", "added p99 ms", "errors", "server CPU ms/turn", "turns/s (CPU phase)",
    "command",
]  # fmt: skip


def run(profile: str, rounds: int, cpu_turns: int, cpu_players: int) -> dict[str, Any]:
    """Run one profile; print and record the figures."""
    with workdir("http") as tmp, mock(profile, tmp) as (_m, upstream):
        with npcbridge(upstream, tmp) as (server, ws_url):
            result = loadgen(
                [
                    "--ws", ws_url, "--direct", upstream, "--server-pid", str(server.pid),
                    "--rounds", str(rounds), "--cpu-turns", str(cpu_turns),
                    "--cpu-players", str(cpu_players),
                ],
                module="bench.loadgen_http",
            )  # fmt: skip
    figures: dict[str, Any] = added_ttft(result["samples"], result["errors"])
    for path, ttft in figures.items():
        cpu = result["cpu"].get(path, {})
        figures[path] = f = {**ttft, **cpu, "errors": ttft["errors"] + cpu.get("errors", 0)}
        baseline = path == "openai-sdk-direct"
        append_result(
            "7. HTTP transport beside WebSocket: added TTFT (concurrency 1), server CPU per turn",
            COLUMNS,
            [now(), profile, path, f["n"], f["outside_p50"], f["outside_p99"],
             "(baseline)" if baseline else f["added_p50"],
             "(baseline)" if baseline else f["added_p99"], f["errors"],
             cpu.get("cpu_ms_per_turn", "–"), cpu.get("turns_per_s", "–"),
             f"`{command_line()}`"],
        )  # fmt: skip
    print(json.dumps({"bench": "http", "profile": profile, **figures}, indent=1))
    return figures


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_http")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cpu-turns", type=int, default=400)
    parser.add_argument("--cpu-players", type=int, default=10)
    parser.add_argument("--profiles", default="groq-750")
    args = parser.parse_args()
    raise_nofile()
    for profile in args.profiles.split(","):
        run(profile, args.rounds, args.cpu_turns, args.cpu_players)


if __name__ == "__main__":
    main()
