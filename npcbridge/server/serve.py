"""Start and stop the WebSocket server of an :class:`~.context.Application`."""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..protocol import CloseCode, ErrorCode, ProtocolError, encode
from ..protocol.frames import error_frame
from .connection import BridgeConnection, connection_class
from .context import Application
from .http import HttpFront
from .http_forward import WorkerPlace
from .http_private import PrivateListener
from .http_transport import HttpTransport
from .session import Session

if TYPE_CHECKING:
    from websockets.asyncio.server import Server as WsServer

log = logging.getLogger("npcbridge.server")


class Server:
    """A running server: ``host``/``port`` as bound, ``url`` to connect to."""

    def __init__(
        self,
        app: Application,
        ws_server: WsServer,
        http: HttpFront,
        transport: HttpTransport,
        private: PrivateListener | None = None,
    ) -> None:
        self.app = app
        self.ws_server = ws_server
        #: the plain-HTTP side (its open connections)
        self.http = http
        #: the HTTP transport (its sessions)
        self.http_transport = transport
        #: a worker's listener of requests forwarded by the other workers (None: one process)
        self.private = private
        sock = next(iter(ws_server.sockets))
        self.host, self.port = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        """``ws://host:port/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/"

    async def close(self) -> None:
        """Stop accepting, close connections (their turns are cancelled), close the app."""
        self.ws_server.close()
        if self.private is not None:
            await self.private.close()
        self.http.close_all()
        await self.http_transport.close()
        await self.ws_server.wait_closed()
        await self.app.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


#: collections of the middle generation between two full ones (Python's default: 10)
FULL_COLLECTION_EVERY = 100


def settle_heap() -> None:
    """Collect start-up garbage, then move every object still alive (modules, plugins,
    configuration) out of the garbage collector's sight with :func:`gc.freeze`.

    Called once by a server *process* after it started listening (``npcbridge serve``; not by
    :func:`serve`, which tests run many times in one process). A full collection otherwise
    walks the ~100,000 start-up objects every time and stops every stream for tens of
    milliseconds (longest pause at 100 players 80.7 ms, 19.9 ms after freezing:
    ``python -m bench.bench_gc``, ``bench/RESULTS.md``).

    Full collections then come every :data:`FULL_COLLECTION_EVERY` collections of the middle
    generation instead of Python's 10: with hundreds of turns in flight their objects live long
    enough to reach the oldest generation, and a full collection that walks all of them (over
    100 ms at 1,000 players) came about once a second. Garbage in reference cycles that
    reached the oldest generation waits longer; memory stayed the same in the measurements.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    log.debug("heap settled: %d start-up objects frozen", gc.get_freeze_count())


def peer_ip(ws: ServerConnection) -> str:
    """The peer's IP address (the key of the per-IP connection cap)."""
    address = ws.remote_address
    return str(address[0]) if address else ""


async def refuse_over_ip_cap(ws: ServerConnection, cap: int) -> None:
    """Answer ``error`` ``rate_limited`` and close 1008: too many connections from one IP."""
    exc = ProtocolError(
        ErrorCode.RATE_LIMITED,
        f"more than {cap} connections from one address",
        retryable=True,
        retry_after_ms=1000,
    )
    try:
        await ws.send(encode(error_frame(exc)))
        await ws.close(CloseCode.POLICY_VIOLATION, "too many connections from this address")
    except Exception:  # the peer may already be gone
        pass


def refuse_upgrades_over_ip_cap(
    cap: int, connections_from: Callable[[str], int]
) -> Callable[[ServerConnection, Request], Response | None]:
    """websockets' ``process_request``: an upgrade from an address that already holds ``cap``
    WebSocket connections gets HTTP 429 with ``Retry-After: 1``; None lets the upgrade proceed.
    (Plain HTTP never gets here: :class:`BridgeConnection` hands it to the HTTP front.)"""

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if connections_from(peer_ip(connection)) < cap:
            return None
        body = b"too many connections from this address\n"
        headers = Headers(
            [
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
                ("Retry-After", "1"),
            ]
        )
        return Response(429, "Too Many Requests", headers, body)

    return process_request


async def serve(
    app: Application,
    host: str | None = None,
    port: int | None = None,
    *,
    connection_handler: Callable[[ServerConnection], Awaitable[None]] | None = None,
    reuse_port: bool = False,
    worker: WorkerPlace | None = None,
) -> Server:
    """Start the app and listen; ``host``/``port`` default to the app's config.

    ``connection_handler`` replaces the protocol session for each connection while keeping
    every WebSocket setting, limit and HTTP route; the WebSocket conformance tests use it to
    run the Autobahn cases (which need an echo peer) against this exact server setup.
    ``reuse_port`` listens with ``SO_REUSEPORT`` (the workers of ``npcbridge serve --workers``);
    ``worker`` places this server among those workers: HTTP transport requests for another
    worker's session are forwarded to it, and this one listens for theirs (:mod:`.http_forward`).
    """
    context = app.context
    cfg = context.settings
    await app.start()
    sessions = context.sessions
    per_ip: Counter[str] = Counter()

    async def handler(ws: ServerConnection) -> None:
        ip = peer_ip(ws)
        per_ip[ip] += 1
        try:
            if per_ip[ip] > cfg.max_connections_per_ip:
                # process_request refuses most of these with HTTP 429 before the upgrade; this
                # catches handshakes that raced past it
                await refuse_over_ip_cap(ws, cfg.max_connections_per_ip)
                return
            if connection_handler is not None:
                await connection_handler(ws)
                return
            session = Session(context, cast(BridgeConnection, ws))
            sessions.add(session)
            try:
                await session.run()
            finally:
                sessions.discard(session)
        finally:
            per_ip[ip] -= 1
            if per_ip[ip] <= 0:
                del per_ip[ip]

    origins: list[Any] | None = None
    if cfg.allowed_origins is not None:
        # non-browser clients send no Origin header and are always allowed
        origins = [None, *cfg.allowed_origins]
    transport = HttpTransport(context, worker)
    front = HttpFront(context, lambda: len(sessions), transport, lambda: transport.open_sessions)
    private = None
    if worker is not None:
        # forwarded requests are answered here, by a front whose transport never forwards
        forwarded = HttpFront(
            context, lambda: len(sessions), transport.local, lambda: transport.open_sessions
        )
        private = PrivateListener(forwarded, worker)
        await private.start()
    ws_server = await ws_serve(
        handler,
        host if host is not None else cfg.host,
        port if port is not None else cfg.port,
        max_size=cfg.max_message_bytes,
        ping_interval=cfg.ping_interval_s,
        ping_timeout=cfg.ping_timeout_s,
        compression=None,
        origins=origins,
        process_request=refuse_upgrades_over_ip_cap(
            cfg.max_connections_per_ip, lambda ip: per_ip.get(ip, 0)
        ),
        server_header=context.server_name,
        create_connection=connection_class(front),
        reuse_port=reuse_port,
    )
    server = Server(app, ws_server, front, transport, private)
    log.info(
        "npcbridge listening on %s (models: %s%s)",
        server.url,
        ", ".join(context.catalog.ids()),
        "; OFFLINE replies" if context.offline else "",
    )
    return server
