"""``python -m npcbridge.testing.fake_upstream``: serve the fake upstream until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from ...process import stop_event
from .server import FakeUpstream
from .streams import stamped_reply


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m npcbridge.testing.fake_upstream",
        description="Serve the fake Groq/OpenAI upstream until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (default)")
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--tokens-per-s", type=float, default=0.0, help="0 = unpaced")
    parser.add_argument("--chars-per-token", type=int, default=None)
    parser.add_argument("--write-interval-ms", type=float, default=10.0)
    parser.add_argument("--stall-s", type=float, default=60.0, help="length of [[stall]]")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--no-rate-limit-headers", action="store_true")
    parser.add_argument("--record", action="store_true", help="keep request records (memory grows)")
    parser.add_argument("--no-strict-groq", action="store_true")
    parser.add_argument(
        "--echo-headers", action="store_true", help="echo request headers back (echo_headers)"
    )
    parser.add_argument(
        "--stamp-words",
        type=int,
        default=0,
        metavar="N",
        help="benchmarks: every reply is N time-stamped tokens (stamp_tokens); 0 = normal replies",
    )
    parser.add_argument(
        "--tts-first-byte-ms", type=float, default=0.0, help="speech latency (audio.first_byte_ms)"
    )
    parser.add_argument(
        "--tts-ms-per-input-char",
        type=float,
        default=0.0,
        help="more speech latency per input character (audio.ms_per_input_char)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeUpstream(
        host=args.host,
        port=args.port,
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        chars_per_token=args.chars_per_token,
        write_interval_ms=args.write_interval_ms,
        stall_directive_s=args.stall_s,
        api_key=args.api_key,
        rate_limit_headers={} if args.no_rate_limit_headers else None,
        record_requests=args.record,
        strict_groq=not args.no_strict_groq,
        reply_fn=stamped_reply(args.stamp_words) if args.stamp_words > 0 else None,
        stamp_tokens=args.stamp_words > 0,
        echo_headers=args.echo_headers,
    )
    fake.audio.first_byte_ms = args.tts_first_byte_ms
    fake.audio.ms_per_input_char = args.tts_ms_per_input_char
    stop = stop_event()
    async with fake:
        line = {
            "base_url": fake.base_url,
            "groq_base_url": fake.groq_base_url,
            "url": fake.url,
            "port": fake.port,
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: serve until SIGTERM/SIGINT; return the exit status."""
    args = _parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))
    return 0
