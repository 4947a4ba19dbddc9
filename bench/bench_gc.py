"""Benchmark 5: garbage-collector pauses under load, with and without ``settle_heap()``.

    python -m bench.bench_gc [--players 100] [--duration 30]

The server runs twice under the same closed loop of players (40-token replies, groq-750): once
as ``npcbridge serve`` runs it (start-up objects frozen out of the collector's sight by
``settle_heap()``), once with ``--no-gc-freeze``. The server records every collection's pause
(``gc.callbacks``); a full (generation 2) collection stops every stream while it runs.
Reported: turns/s, the time outside the mock before the first token (p50, p99, max) and the
collections and longest pause per generation.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

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
    "date", "settle_heap (gc.freeze)", "players", "turns/s", "outside-mock TTFT p50 ms",
    "p99 ms", "max ms", "gen 2 collections", "longest gen 2 pause ms", "longest gen 0/1 pause ms",
    "errors", "command",
]  # fmt: skip


def run(players: int, duration: float) -> list[dict[str, Any]]:
    """Run with and without the freeze; print and record."""
    rows: list[dict[str, Any]] = []
    for freeze in (False, True):
        with workdir("gc") as tmp, mock("groq-750", tmp) as (_m, upstream):
            report = tmp / "gc.json"
            server_args = ["--gc-report", str(report)] + ([] if freeze else ["--no-gc-freeze"])
            with npcbridge(upstream, tmp, server_args=server_args) as (_s, ws_url):
                result = loadgen(
                    ["players", "--ws", ws_url, "--players", str(players),
                     "--duration", str(duration), "--warmup", "3"]
                )  # fmt: skip
            pauses = json.loads(report.read_text())
        overhead = result["overhead"]
        row = {"freeze": freeze, **result, "gc": pauses}
        rows.append(row)
        print(json.dumps(row), flush=True)
        append_result(
            "5. Garbage-collector pauses under load",
            COLUMNS,
            [now(), "on" if freeze else "off", players, result["turns_per_s"],
             overhead["p50"], overhead["p99"], overhead["max"],
             pauses["2"]["collections"], pauses["2"]["max_ms"],
             max(pauses["0"]["max_ms"], pauses["1"]["max_ms"]),
             result["errors"], f"`{command_line()}`"],
        )  # fmt: skip
    return rows


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_gc")
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    raise_nofile()
    run(args.players, args.duration)


if __name__ == "__main__":
    main()
