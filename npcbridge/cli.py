"""``npcbridge serve`` and ``npcbridge chat``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from . import __version__, workers
from .config import ConfigError, load_config
from .plugin.manager import PluginLoadError
from .process import configure_logging, stop_event


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the server")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; env NPCBRIDGE_HOST)")
    p.add_argument("--port", type=int, help="port (default 8765; env NPCBRIDGE_PORT)")
    p.add_argument("--config", help="TOML config file (env NPCBRIDGE_CONFIG)")
    p.add_argument("--store", help="SQLite path or redis:// URL (env NPCBRIDGE_STORE)")
    p.add_argument("--base-url", help="OpenAI-compatible upstream URL (env NPCBRIDGE_BASE_URL)")
    p.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE:ATTR", help="load a plugin"
    )
    p.add_argument("--offline", action="store_true", help="canned replies, never call upstream")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING ...")
    p.add_argument(
        "--workers",
        type=int,
        help="server processes on the one port (default 1; env NPCBRIDGE_WORKERS)",
    )


def _chat_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="talk to an NPC from the terminal")
    p.add_argument("--npc", required=True, help="NPC id (defined in the server's config, or new)")
    p.add_argument(
        "--url",
        default="ws://127.0.0.1:8765/",
        help="the server's WebSocket URL, ws:// or wss:// (default: %(default)s)",
    )
    p.add_argument("--token", help="client token (env NPCBRIDGE_TOKEN)")
    p.add_argument("--player", default="player", help="player id (default: %(default)s)")
    p.add_argument(
        "--persona",
        metavar="DESCRIPTION",
        help="define the NPC for this chat from a description, e.g. 'A gruff blacksmith.'",
    )
    p.add_argument(
        "--name",
        help="the name the NPC goes by with --persona (default: from the description, "
        "'A gruff blacksmith.' -> 'the gruff blacksmith')",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``npcbridge`` console script."""
    parser = argparse.ArgumentParser(prog="npcbridge", description="LLM dialogue for game NPCs")
    parser.add_argument("--version", action="version", version=f"npcbridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _chat_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args, sys.argv[1:] if argv is None else argv)
    return _chat(args)


def _serve(args: argparse.Namespace, argv: list[str]) -> int:
    overrides = {
        "server.host": args.host,
        "server.port": args.port,
        "store.url": args.store,
        "upstream.base_url": args.base_url,
        "upstream.offline": True if args.offline else None,
        "log_level": args.log_level,
        "server.workers": args.workers,
    }
    try:
        config = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"npcbridge: config error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    if config.server.workers > 1 and workers.worker_index() is None:
        return _supervise(config, argv)
    try:
        return asyncio.run(_run_server(config, args.plugin))
    except ConfigError as exc:  # a plugin's settings section, validated once it is loaded
        print(f"npcbridge: config error: {exc}", file=sys.stderr)
        return 2
    except (PluginLoadError, StartupError) as exc:
        print(f"npcbridge: cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def _supervise(config: Any, argv: list[str]) -> int:
    """Run ``config.server.workers`` copies of this command under a supervisor."""
    try:
        supervisor = workers.Supervisor(
            config.server.workers,
            config.server.host,
            config.server.port,
            ["-m", "npcbridge.cli", *argv],
        )
    except OSError as exc:
        print(
            f"npcbridge: cannot start: cannot listen on {config.server.host}:"
            f"{config.server.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    return supervisor.run()


class StartupError(Exception):
    """The server could not start (port taken, store unreachable, plugin failure)."""


async def _run_server(config: Any, plugins: list[str]) -> int:
    from .app import App
    from .server import serve, settle_heap

    # first: a SIGTERM that arrives during start-up still ends the process cleanly
    stop = stop_event()
    app = App(config, plugins)
    port = workers.worker_port()
    try:
        # a worker listens on the supervisor's port beside the other workers
        server = await serve(
            app, port=port, reuse_port=port is not None, worker=workers.worker_place()
        )
    except OSError as exc:
        await app.close()
        raise StartupError(
            f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}"
        ) from None
    except Exception as exc:
        await app.close()
        raise StartupError(str(exc)) from None
    settle_heap()
    workers.announce_ready()
    await stop.wait()
    await server.close()
    return 0


def _chat(args: argparse.Namespace) -> int:
    import os

    from .client.chat import chat

    token = args.token or os.environ.get("NPCBRIDGE_TOKEN")
    return chat(args.url, args.npc, args.player, token, args.persona, args.name)


if __name__ == "__main__":
    raise SystemExit(main())
