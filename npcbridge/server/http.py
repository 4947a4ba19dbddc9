"""Plain HTTP on the WebSocket port: who may read what, and which answer a request gets.

Every request that is not a WebSocket upgrade reaches :meth:`HttpFront.respond` (through an
:class:`~.http_connection.HttpConnection`): ``GET /healthz``, the routes plugins registered
(``/metrics`` among them) and the HTTP transport under ``/v1/``.

Trust: a request is *trusted* when its peer is a loopback address, or it carries
``Authorization: Bearer <server.token>``. ``/healthz`` answers ``{"status": "ok"}`` to anyone (a
load balancer's probe); its details (server, offline, connections, tasks) go only to trusted
requests. An *admin* route (``/metrics``) answers only trusted requests (else 401 with
``WWW-Authenticate: Bearer``), and never a browser page of another origin: a request whose
``Origin`` header is present and is not the server's own origin gets 403. (A server bound off
loopback always has a token: start-up refuses otherwise.) A request that another worker of
``npcbridge serve --workers N`` forwarded is judged by its client's address, not by the
forwarding worker's loopback one (:mod:`.http_private`).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import ipaddress
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..plugin.http import HttpRequest, HttpResponse
from .http_connection import Answer, Gone, HttpConnection, HttpLimits, text_answer
from .http_transport import bearer_token, transport_refusal

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("npcbridge.server")

#: the HTTP transport's answer for a request under ``/v1/`` (see :mod:`.http_transport`)
Transport = Callable[[HttpRequest, Gone], Awaitable[Answer]]


def is_loopback_peer(peer: str) -> bool:
    """True when ``peer`` (an IP address) is a loopback address (IPv4-mapped IPv6 included)."""
    try:
        ip = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def has_token(context: ServerContext, headers: Mapping[str, str]) -> bool:
    """True when the headers carry ``Authorization: Bearer <server.token>``."""
    token = context.settings.token
    sent = bearer_token(headers)
    if token is None or sent is None:
        return False
    return hmac.compare_digest(sent.encode(), token.get_secret_value().encode())


def same_origin(headers: Mapping[str, str]) -> bool:
    """False when an ``Origin`` header is present and names another host than ``Host``."""
    origin = headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    host = headers.get("host", "").lower()
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host


def json_answer(
    status: int, body: object, headers: tuple[tuple[str, str], ...] = ()
) -> HttpResponse:
    """A JSON answer (one line)."""
    return HttpResponse(status, json.dumps(body).encode() + b"\n", "application/json", headers)


class HttpFront:
    """The plain-HTTP side of one server: its connections and the answer to each request."""

    def __init__(
        self,
        context: ServerContext,
        connections: Callable[[], int],
        transport: Transport | None = None,
        http_sessions: Callable[[], int] = lambda: 0,
    ) -> None:
        self.context = context
        self._connections = connections
        self._transport = transport
        self._http_sessions = http_sessions
        settings = context.settings
        self.limits = HttpLimits(
            max_body_bytes=settings.max_message_bytes,
            keepalive_s=settings.http_keepalive_s,
            request_timeout_s=settings.http_request_timeout_s,
        )
        #: the open plain-HTTP connections
        self.open: set[HttpConnection] = set()
        self._per_ip: Counter[str] = Counter()

    # ---------------------------------------------------------------- connections

    def adopt(self, socket: asyncio.Transport, received: bytes) -> None:
        """Take over a TCP connection whose first request (``received`` so far) is plain HTTP.

        An address holding ``server.max_connections_per_ip`` HTTP connections already gets
        429 and the connection is closed.
        """
        peername = socket.get_extra_info("peername")
        peer = str(peername[0]) if peername else ""
        if self._per_ip[peer] >= self.context.settings.max_connections_per_ip:
            body = b"too many connections from this address\n"
            socket.write(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nConnection: close\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            socket.close()
            return
        connection = HttpConnection(
            self.respond,
            peer=peer,
            trust=self.trusted,
            limits=self.limits,
            server_header=self.context.server_name,
            on_close=self._closed,
            refusal=self.refusal,
        )
        self.open.add(connection)
        self._per_ip[peer] += 1
        socket.set_protocol(connection)
        connection.connection_made(socket)
        if received:
            connection.data_received(received)

    def _closed(self, connection: HttpConnection) -> None:
        if connection in self.open:
            self.open.discard(connection)
            self._per_ip[connection.peer] -= 1
            if self._per_ip[connection.peer] <= 0:
                del self._per_ip[connection.peer]

    def close_all(self) -> None:
        """Close every plain-HTTP connection (server shutdown)."""
        for connection in list(self.open):
            connection.close()

    def refusal(
        self, path: str, headers: Mapping[str, str], status: HTTPStatus, text: str
    ) -> HttpResponse:
        """The answer to a request that cannot be read whole (too large, too slow): an
        ``error`` message under ``/v1/``, plain text elsewhere."""
        if path.startswith("/v1/") and self._transport is not None:
            return transport_refusal(headers, status, text)
        return text_answer(status, text)

    def trusted(self, peer: str, headers: Mapping[str, str]) -> bool:
        """A loopback peer, or the server token as a bearer token."""
        return is_loopback_peer(peer) or has_token(self.context, headers)

    # ---------------------------------------------------------------- answers

    async def respond(self, request: HttpRequest, gone: Gone) -> Answer:
        """The answer to one plain-HTTP request."""
        if request.path == "/healthz":
            if request.method not in ("GET", "HEAD"):
                return _not_allowed(("GET", "HEAD"))
            return self._health(request)
        if request.path.startswith("/v1/") and self._transport is not None:
            return await self._transport(request, gone)
        route = self.context.registry.route_for(request.path)
        if route is None:
            return text_answer(HTTPStatus.NOT_FOUND, "not found")
        methods = route.methods | ({"HEAD"} if "GET" in route.methods else set())
        if request.method not in methods:
            return _not_allowed(sorted(methods))
        if route.admin:
            if not same_origin(request.headers):
                return text_answer(HTTPStatus.FORBIDDEN, "cross-origin requests are refused")
            if not request.trusted:
                refused = text_answer(HTTPStatus.UNAUTHORIZED, "unauthorized")
                return HttpResponse(
                    refused.status,
                    refused.body,
                    refused.content_type,
                    (("WWW-Authenticate", "Bearer"),),
                )
        answer = route(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, HttpResponse):
            log.error("HTTP route %s answered %s, not an HttpResponse", route.path, type(answer))
            return text_answer(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
        return answer

    def _health(self, request: HttpRequest) -> HttpResponse:
        body: dict[str, object] = {"status": "ok"}
        if request.trusted:
            body.update(
                server=self.context.server_name,
                offline=self.context.offline,
                connections=self._connections(),
                http_sessions=self._http_sessions(),
                tasks=len(asyncio.all_tasks()),
            )
        return json_answer(200, body)


def _not_allowed(methods: tuple[str, ...] | list[str]) -> HttpResponse:
    answer = text_answer(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")
    return HttpResponse(
        answer.status, answer.body, answer.content_type, (("Allow", ", ".join(methods)),)
    )
