"""A complete test stack in one process: the fake upstream and a real npcbridge server.

For test suites written in other languages (Lua, GDScript) and for trying clients by hand::

    python -m npcbridge.testing.stack [--token T] [--ttft-ms 0] [--tokens-per-s 0]
        [--port 0] [--upstream-port 0] [--control-port 0] [--api-key K] [--log-level L]

prints one JSON line ``{"ws_url", "upstream_url", "control_url", "token"}`` and runs until stdin
closes, SIGTERM or SIGINT. Every port defaults to 0 (a free one); ``--port`` defaults to
``NPCBRIDGE_PORT`` when it is set, so a suite can run where only some ports are allowed. A port
that cannot be bound ends the stack with one line on stderr and exit status 2.
The stack logs to stderr as ``npcbridge serve`` does
(:func:`~npcbridge.process.configure_logging`: the same format, credentials redacted), at
``--log-level`` (default ``warning``). ``--api-key`` is the key the server sends the fake
upstream (default ``test-key``).
Control endpoints (HTTP on ``control_url``):

``POST /restart?down_ms=500``  stop the WebSocket server (clients see the close), wait, start a
                               new one on the same port (for reconnect tests).
``GET /upstream``              the fake upstream's counters (requests, disconnects, ...).

The server defines two NPCs in config, ``blacksmith`` (Brom) and ``mage`` (Aelindra).
When the ``npcbridge-moderation`` plugin is installed it is loaded with one blocked word,
``grobblewort`` (:data:`BLOCKED_WORD`), so client suites can see ``error`` ``filtered``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from ..app import App
from ..config import Config, load_config
from ..process import configure_logging, stop_event
from ..server import Server, serve
from .fake_upstream import FakeUpstream

#: the one word the stack's moderation plugin blocks (when the plugin is installed)
BLOCKED_WORD = "grobblewort"

DEMO_NPCS: dict[str, dict[str, Any]] = {
    "blacksmith": {
        "name": "Brom",
        "description": "The village blacksmith, rough but kind.",
        "personality": "gruff, honest, secretly soft-hearted",
        "speech_style": "short sentences, calls everyone 'lad'",
        "voice": {"name": "troy"},
    },
    "mage": {
        "name": "Aelindra",
        "description": "A haughty elf mage who considers humans children.",
        "personality": "proud, precise, impatient",
        "speech_style": "formal and condescending",
        "voice": {"name": "hannah", "always": True},
    },
}


def stack_config(
    upstream_url: str,
    store_url: str,
    token: str | None = None,
    *,
    api_key: str = "test-key",
    **server: Any,
) -> Config:
    """The configuration the stack's server runs with (``server`` overrides ``[server]``)."""
    overrides: dict[str, Any] = {
        "upstream.base_url": upstream_url,
        "upstream.api_key": api_key,
        "store.url": store_url,
        "server.token": token,
        "upstream.first_token_timeout_s": 5.0,
    }
    overrides.update({f"server.{k}": v for k, v in server.items()})
    config = load_config(None, env={}, overrides=overrides)
    from ..protocol.messages import Persona

    config.npcs.update({k: Persona.model_validate(v) for k, v in DEMO_NPCS.items()})
    return config


class Stack:
    """Fake upstream + server + control endpoints."""

    def __init__(
        self,
        token: str | None,
        ttft_ms: float,
        tokens_per_s: float,
        *,
        port: int = 0,
        upstream_port: int = 0,
        control_port: int = 0,
        api_key: str = "test-key",
    ) -> None:
        self.token = token
        self.api_key = api_key
        self.fake = FakeUpstream(ttft_ms=ttft_ms, tokens_per_s=tokens_per_s, port=upstream_port)
        self.tmp = tempfile.TemporaryDirectory(prefix="npcbridge-stack-")
        self.server: Server | None = None
        #: the WebSocket port (0 until started: then the bound one, kept across restarts)
        self.port = port
        self.control: web.AppRunner | None = None
        self.control_port = control_port

    async def _start_server(self) -> None:
        config = stack_config(
            self.fake.base_url,
            str(Path(self.tmp.name) / "stack.db"),
            self.token,
            api_key=self.api_key,
        )
        plugins: tuple[str, ...] = ()
        if importlib.util.find_spec("npcbridge_moderation") is not None:
            config.extra["moderation"] = {"blocklist": [BLOCKED_WORD]}
            plugins = ("npcbridge_moderation:Moderation",)
        app = App(config, plugins, entry_points=False)
        try:
            self.server = await serve(app, port=self.port)
        except BaseException:
            await app.close()
            raise
        self.port = self.server.port

    async def start(self) -> None:
        """Start everything."""
        await self.fake.start()
        await self._start_server()
        control = web.Application()
        control.router.add_post("/restart", self._restart)
        control.router.add_get("/upstream", self._upstream)
        self.control = web.AppRunner(control, access_log=None)
        await self.control.setup()
        site = web.TCPSite(self.control, "127.0.0.1", self.control_port)
        await site.start()
        # the runner's addresses are its sites' socket names: (host, port) for TCP
        self.control_port = int(self.control.addresses[0][1])

    async def _restart(self, request: web.Request) -> web.Response:
        down_ms = float(request.query.get("down_ms", "500"))
        if self.server is not None:
            await self.server.close()
        await asyncio.sleep(down_ms / 1000)
        await self._start_server()
        return web.json_response({"ok": True, "port": self.port})

    async def _upstream(self, request: web.Request) -> web.Response:
        return web.json_response(self.fake.stats())

    def describe(self) -> dict[str, Any]:
        """The URLs a test needs."""
        return {
            "ws_url": f"ws://127.0.0.1:{self.port}/",
            "upstream_url": self.fake.base_url,
            "control_url": f"http://127.0.0.1:{self.control_port}",
            "token": self.token,
        }

    async def stop(self) -> None:
        """Stop everything."""
        if self.server is not None:
            await self.server.close()
        if self.control is not None:
            await self.control.cleanup()
        await self.fake.stop()
        self.tmp.cleanup()


async def _main(args: argparse.Namespace) -> int:
    stack = Stack(
        args.token,
        args.ttft_ms,
        args.tokens_per_s,
        port=args.port,
        upstream_port=args.upstream_port,
        control_port=args.control_port,
        api_key=args.api_key,
    )
    try:
        await stack.start()
    except OSError as exc:
        await stack.stop()
        print(f"npcbridge test stack: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(json.dumps(stack.describe()), flush=True)
    stop = stop_event()
    loop = asyncio.get_running_loop()
    if not sys.stdin.isatty():
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    await stack.stop()
    return 0


def _port(text: str) -> int:
    """A port number, 0 meaning any free port."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (0-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", default=None)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--tokens-per-s", type=float, default=200.0)
    env_port = os.environ.get("NPCBRIDGE_PORT")
    parser.add_argument(
        "--port",
        type=_port,
        default=env_port or "0",
        help="WebSocket port of the npcbridge server (default: NPCBRIDGE_PORT, else 0 = free)",
    )
    parser.add_argument(
        "--upstream-port", type=_port, default=0, help="fake upstream port (default 0 = free)"
    )
    parser.add_argument(
        "--control-port", type=_port, default=0, help="control endpoint port (default 0 = free)"
    )
    parser.add_argument(
        "--api-key", default="test-key", help="the key sent to the fake upstream (test-key)"
    )
    parser.add_argument("--log-level", default="warning", help="DEBUG, INFO, WARNING (default)")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)  # as `npcbridge serve`: same format, secrets redacted
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
