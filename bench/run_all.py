"""Run every benchmark in one run on this machine (not part of CI).

    python -m bench.run_all [--quick] [--no-litellm]

Order: 1 added TTFT (both profiles), 2 turns/s (1, 10, 100, 1000 players), 3 streaming overhead
(200 replies), 4 memory per idle connection (1,000 and 5,000), 5 garbage-collector pauses at
100 players with and without ``settle_heap()``, 7 the HTTP transport (long-poll and SSE beside
WebSocket). Each appends its rows to
bench/RESULTS.md. ``--quick`` shortens every run (for trying the harness, not for figures).
"""

from __future__ import annotations

import argparse
import time

from bench import bench_gc, bench_http, bench_memory, bench_stream, bench_throughput, bench_ttft
from bench.common import litellm_available, machine, raise_nofile


def main() -> None:
    """Run them all."""
    parser = argparse.ArgumentParser(prog="python -m bench.run_all")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()
    print("machine:", machine(), "| open files:", raise_nofile())
    with_litellm = not args.no_litellm
    if with_litellm and not litellm_available():
        print("LiteLLM proxy not installed (bench/README.md says how); running without it")
    started = time.monotonic()
    for profile in ("groq-750", "fast-1800"):
        bench_ttft.run(profile, 40 if args.quick else 300, with_litellm)
    bench_throughput.run(
        "groq-750", [1, 10, 100, 1000], 3 if args.quick else 10, with_litellm, [1, 2]
    )
    bench_stream.run("groq-750", 200, 200, 3 if args.quick else 10)
    for count in (1000, 5000):
        bench_memory.run(count)
    bench_gc.run(100, 10 if args.quick else 30)
    bench_http.run("groq-750", 20 if args.quick else 200, 40 if args.quick else 400, 10)
    print(f"all benchmarks done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
