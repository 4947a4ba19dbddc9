"""What npcbridge's long-running programs share: ``npcbridge serve``, the test stack, the fake
upstream's command line and the benchmark server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

#: the log line format of every npcbridge program
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` ("info", "DEBUG", ...) in :data:`LOG_FORMAT`."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)


def stop_event() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (call it inside the running loop, early: a signal
    that arrives during start-up then still ends the program cleanly)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # platforms without signal handlers
            loop.add_signal_handler(sig, stop.set)
    return stop
