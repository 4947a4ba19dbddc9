"""The npcbridge server for benchmarks: ``npcbridge serve`` without entry-point plugins.

    python -m bench.server --config FILE

Same configuration loading, logging format and server as the CLI (including its
``settle_heap()`` after start-up); the only difference is that plugins installed in the
environment (examples such as a pirate-speech filter, plugins under development) are not loaded,
so every run measures the core server with its builtin plugins.

``--no-gc-freeze`` skips ``settle_heap()`` (to measure what it does); ``--gc-report FILE`` writes
the garbage collector's pauses after start-up, per generation, as JSON when the server stops.
``--workers N`` runs N of these servers on the one port under ``npcbridge serve``'s supervisor
(:mod:`npcbridge.workers`), as ``npcbridge serve --workers N`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from npcbridge import workers
from npcbridge.app import App
from npcbridge.config import load_config
from npcbridge.process import configure_logging, stop_event
from npcbridge.server import serve, settle_heap


class GcPauses:
    """Records how long each garbage collection took, per generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._started) * 1000)

    def report(self) -> dict[str, Any]:
        """Per generation: collections, longest and total pause (ms)."""
        return {
            str(gen): {
                "collections": len(ms),
                "max_ms": round(max(ms, default=0.0), 3),
                "total_ms": round(sum(ms), 3),
            }
            for gen, ms in self.pauses.items()
        }


async def _run(
    config_file: str, freeze: bool, gc_report: bool, count: int
) -> dict[str, Any] | None:
    stop = stop_event()
    config = load_config(config_file, overrides={"server.workers": count})
    configure_logging(config.log_level)
    app = App(config, entry_points=False)
    port = workers.worker_port()
    server = await serve(app, port=port, reuse_port=port is not None, worker=workers.worker_place())
    if freeze:
        settle_heap()
    workers.announce_ready()
    pauses = GcPauses()
    if gc_report:
        gc.callbacks.append(pauses)
    await stop.wait()
    if gc_report:
        gc.callbacks.remove(pauses)
    await server.close()
    return pauses.report() if gc_report else None


def main() -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--config", required=True)
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop (npcbridge serve uses asyncio's default loop)",
    )
    parser.add_argument("--no-gc-freeze", action="store_true", help="skip settle_heap()")
    parser.add_argument("--gc-report", metavar="FILE", help="write GC pauses here at the end")
    parser.add_argument("--workers", type=int, default=1, help="server processes on the port")
    args = parser.parse_args()
    if args.workers > 1 and workers.worker_index() is None:
        config = load_config(args.config, overrides={"server.workers": args.workers})
        configure_logging(config.log_level)
        command = ["-m", "bench.server", *sys.argv[1:]]
        return workers.Supervisor(
            args.workers, config.server.host, config.server.port, command
        ).run()
    run = _run(args.config, not args.no_gc_freeze, bool(args.gc_report), args.workers)
    if args.loop == "uvloop":
        import uvloop  # type: ignore[import-not-found]

        report = uvloop.run(run)
    else:
        report = asyncio.run(run)
    if args.gc_report:
        Path(args.gc_report).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
