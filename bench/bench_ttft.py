"""Benchmark 1: time to first token that npcbridge adds, at concurrency 1.

    python -m bench.bench_ttft [--rounds 300] [--profiles groq-750,fast-1800] [--no-litellm]

Three paths to the same mock, taken in turn (shuffled each round): a game client over
WebSocket → npcbridge → mock; the ``openai`` SDK → mock directly; the SDK → LiteLLM's proxy →
mock. For each request the time outside the mock is the client's time to first token minus the
mock's own (from the stamps in the tokens). "Added" compares the same quantile of the two
paths: added p50 = p50(path) − p50(direct SDK), added p99 = p99(path) − p99(direct SDK), so
scheduling noise of the shared machine that hits every path alike cancels out.
"""

from __future__ import annotations

import argparse
import json
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
    percentile,
    raise_nofile,
    workdir,
)

COLUMNS = [
    "date", "profile", "path", "n", "outside-mock p50 ms", "outside-mock p99 ms",
    "added p50 ms", "added p99 ms", "errors", "command",
]  # fmt: skip


def added_ttft(
    samples: dict[str, list[float]], errors: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Per path: how many samples, its p50/p99 outside the mock, what it adds at those
    quantiles over the ``openai`` SDK straight to the mock (``openai-sdk-direct``), and its
    errors."""
    direct = samples["openai-sdk-direct"]
    base50, base99 = percentile(direct, 50), percentile(direct, 99)
    return {
        path: {
            "n": len(values),
            "outside_p50": round(percentile(values, 50), 3),
            "outside_p99": round(percentile(values, 99), 3),
            "added_p50": round(percentile(values, 50) - base50, 3),
            "added_p99": round(percentile(values, 99) - base99, 3),
            "errors": errors[path],
        }
        for path, values in samples.items()
    }


def run(profile: str, rounds: int, with_litellm: bool) -> dict[str, Any]:
    """Run one profile; print and record the figures."""
    with workdir("ttft") as tmp, mock(profile, tmp) as (_m, upstream):
        with npcbridge(upstream, tmp) as (_s, ws_url):
            args = ["ttft", "--bridge", ws_url, "--direct", upstream, "--rounds", str(rounds)]
            if with_litellm and litellm_available():
                with litellm(upstream, tmp) as (_l, proxy):
                    result = loadgen([*args, "--litellm", proxy])
            else:
                result = loadgen(args)
    figures = added_ttft(result["samples"], result["errors"])
    for path, f in figures.items():
        baseline = path == "openai-sdk-direct"
        append_result(
            "1. Added time to first token (concurrency 1)",
            COLUMNS,
            [now(), profile, path, f["n"], f["outside_p50"], f["outside_p99"],
             "(baseline)" if baseline else f["added_p50"],
             "(baseline)" if baseline else f["added_p99"],
             f["errors"], f"`{command_line()}`"],
        )  # fmt: skip
    print(json.dumps({"bench": "ttft", "profile": profile, **figures}, indent=1))
    return figures


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ttft")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--profiles", default="groq-750,fast-1800")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()
    raise_nofile()
    for profile in args.profiles.split(","):
        run(profile, args.rounds, not args.no_litellm)


if __name__ == "__main__":
    main()
