"""Benchmark 3: delay from a token leaving the mock to it reaching the client, 200 replies at once.

    python -m bench.bench_stream [--players 200] [--words 200] [--duration 10]

200 players stream long replies at the same time; every token carries the time the mock wrote
it, and the client records when it arrived. The same load straight to the mock over plain
streaming HTTP is the reference (the loopback and client cost without npcbridge). Frames per
token shows coalescing: deltas that queue behind a busy socket leave as one frame.
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
    "date", "profile", "path", "concurrent replies", "tokens", "token delay p50 ms",
    "p99 ms", "frames/token", "errors", "command",
]  # fmt: skip


def run(profile: str, players: int, words: int, duration: float) -> list[dict[str, Any]]:
    """Run through npcbridge and straight to the mock; print and record."""
    rows = []
    args = ["players", "--players", str(players), "--duration", str(duration), "--warmup", "3"]
    with workdir("stream") as tmp, mock(profile, tmp, words=words) as (_m, upstream):
        with npcbridge(upstream, tmp) as (_s, ws_url):
            rows.append({"path": "via npcbridge", **loadgen([*args, "--ws", ws_url])})
        rows.append({"path": "mock direct (reference)", **loadgen([*args, "--sse", upstream])})
    for r in rows:
        print(json.dumps(r), flush=True)
        per = r["frames"] / r["tokens"] if r["tokens"] else float("nan")
        append_result(
            "3. Streaming overhead (token leaves mock → reaches client)",
            COLUMNS,
            [now(), profile, r["path"], players, r["tokens"], r["token_delay"]["p50"],
             r["token_delay"]["p99"], f"{per:.3f}", r["errors"], f"`{command_line()}`"],
        )  # fmt: skip
    return rows


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_stream")
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--profile", default="groq-750")
    args = parser.parse_args()
    raise_nofile()
    run(args.profile, args.players, args.words, args.duration)


if __name__ == "__main__":
    main()
