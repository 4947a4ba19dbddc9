"""The Groq-emulating mock upstream for benchmarks, with time stamps in the tokens.

It is the project's fake upstream (:class:`npcbridge.testing.fake_upstream.FakeUpstream`, real SSE
over HTTP on loopback, paced by ``--ttft-ms`` and ``--tokens-per-s``) with one addition for
measuring: every reply is ``--words`` tokens, and each token's text is
``T<arrival_ns>.<sent_ns> `` where ``arrival_ns`` is when the request reached the mock and
``sent_ns`` when that token was written to the socket (both ``CLOCK_MONOTONIC`` nanoseconds, which
every process on the machine shares). A client can then separate the mock's own time from the
time spent outside it, per request and per token::

    python -m bench.mock --ttft-ms 50 --tokens-per-s 750 --words 40

prints one JSON line (``base_url``, ``port``, ``pid``) and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import os
import re
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from npcbridge.testing.fake_upstream import FakeUpstream

#: the token text before stamping; same width as a stamped token
PLACEHOLDER = "T" + "0" * 19 + "." + "0" * 19
_PLACEHOLDER_BYTES = PLACEHOLDER.encode()
STAMP = re.compile(r"T(\d{19})\.(\d{19})")

_arrival: contextvars.ContextVar[int] = contextvars.ContextVar("arrival", default=0)


def parse_stamps(text: str) -> list[tuple[int, int]]:
    """The ``(arrival_ns, sent_ns)`` pairs in a piece of reply text, in order."""
    return [(int(a), int(s)) for a, s in STAMP.findall(text)]


class _StampingWriter:
    """Wraps an aiohttp response: fills in the stamps of the chunks as they are written."""

    def __init__(self, response: web.StreamResponse, arrival_ns: int) -> None:
        self.response = response
        self.arrival = b"T%019d." % arrival_ns

    async def write(self, data: bytes) -> None:
        stamp = self.arrival + b"%019d" % time.monotonic_ns()
        await self.response.write(data.replace(_PLACEHOLDER_BYTES, stamp))


class StampingUpstream(FakeUpstream):
    """FakeUpstream whose replies are ``words`` stamped tokens."""

    def __init__(self, *, words: int = 40, **options: Any) -> None:
        super().__init__(reply_fn=self._reply, **options)
        self.words = words

    def _reply(self, body: Mapping[str, Any]) -> str:
        return " ".join([PLACEHOLDER] * self.words) + " "

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        _arrival.set(time.monotonic_ns())
        return await super()._handle_chat(request)

    async def _write_paced(  # type: ignore[override]
        self, response: web.StreamResponse, chunks: list[bytes], limit: int, tps: float
    ) -> None:
        writer = _StampingWriter(response, _arrival.get())
        await super()._write_paced(writer, chunks, limit, tps)  # type: ignore[arg-type]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mock", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--tokens-per-s", type=float, default=750.0)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--write-interval-ms", type=float, default=10.0)
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    fake = StampingUpstream(
        port=args.port,
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        words=args.words,
        write_interval_ms=args.write_interval_ms,
        record_requests=False,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with fake:
        line = {"base_url": fake.base_url, "port": fake.port, "pid": os.getpid()}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    asyncio.run(_serve(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
