"""The npcbridge server for benchmarks: ``npcbridge serve`` without entry-point plugins.

    python -m bench.server --config FILE

Same configuration loading, logging format and server as the CLI; the only difference is that
plugins installed in the environment (examples such as a pirate-speech filter, plugins under
development) are not loaded, so every run measures the core server with its builtin plugins.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from npcbridge.app import App
from npcbridge.config import load_config
from npcbridge.server import serve


async def _run(config_file: str) -> None:
    config = load_config(config_file)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = App(config, entry_points=False)
    server = await serve(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


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
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop  # type: ignore[import-not-found]

        uvloop.run(_run(args.config))
    else:
        asyncio.run(_run(args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
