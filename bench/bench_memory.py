"""Benchmark 4: resident memory per idle connection, at 1,000 and 5,000 connections.

    python -m bench.bench_memory [--counts 1000,5000]

A fresh server per count; a few turns warm it up; then a load generator (its own process) opens
N connections, says hello on each and holds them idle. Per connection = (RSS with N idle
connections − RSS before) / N. The open-files limit is raised to the hard limit first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from bench.common import (
    PY,
    ROOT,
    append_result,
    command_line,
    loadgen,
    mock,
    now,
    npcbridge,
    raise_nofile,
    rss_kib,
    workdir,
)

COLUMNS = [
    "date", "idle connections", "RSS before KiB", "RSS with connections KiB",
    "KiB per connection", "failed connects", "command",
]  # fmt: skip


def run(count: int) -> dict[str, float]:
    """Measure one count; print and record."""
    with workdir("memory") as tmp, mock("groq-750", tmp) as (_m, upstream):
        with npcbridge(upstream, tmp) as (server, ws_url):
            loadgen(["players", "--ws", ws_url, "--players", "10", "--duration", "2"])
            time.sleep(1)
            before = rss_kib(server.pid)
            idle = subprocess.Popen(
                [PY, "-m", "bench.loadgen", "idle", "--ws", ws_url, "--conns", str(count)],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            assert idle.stdout is not None and idle.stdin is not None
            opened = json.loads(idle.stdout.readline())
            time.sleep(3)
            after = rss_kib(server.pid)
            idle.stdin.close()
            idle.wait(60)
    per = (after - before) / max(1, opened["open"])
    result = {"count": count, "before": before, "after": after, "per_conn_kib": round(per, 2),
              "open": opened["open"], "failed": opened["failed"]}  # fmt: skip
    print(json.dumps(result), flush=True)
    append_result(
        "4. Memory per idle connection",
        COLUMNS,
        [now(), opened["open"], before, after, f"{per:.1f}", opened["failed"],
         f"`{command_line()}`"],
    )  # fmt: skip
    return result


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_memory")
    parser.add_argument("--counts", default="1000,5000")
    args = parser.parse_args()
    print("open files limit:", raise_nofile())
    for count in args.counts.split(","):
        run(int(count))


if __name__ == "__main__":
    main()
