"""Plain HTTP on the WebSocket port: ``GET /healthz`` (and ``/metrics`` when enabled).

Who may read what: ``/healthz`` answers ``{"status": "ok"}`` to anyone (a load balancer's
probe); its details (server, offline, connections, tasks) go only to a loopback peer or a
request carrying ``Authorization: Bearer <server.token>``. ``/metrics`` answers a loopback peer,
or a request with that header when a token is configured; anyone else gets 401. (A server bound
off loopback always has a token: start-up refuses otherwise.)
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

if TYPE_CHECKING:
    from .context import ServerContext


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


def is_loopback_peer(connection: ServerConnection) -> bool:
    """True when the peer's address is a loopback address (IPv4-mapped IPv6 included)."""
    address = connection.remote_address
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def has_token(context: ServerContext, request: Request) -> bool:
    """True when the request carries ``Authorization: Bearer <server.token>``."""
    token = context.settings.token
    if token is None:
        return False
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.get_secret_value().encode()
    )


def make_process_request(
    context: ServerContext,
    connections: Callable[[], int],
    connections_from: Callable[[str], int] | None = None,
) -> Callable[[ServerConnection, Request], Response | None]:
    """Answer HTTP paths before the WebSocket upgrade; None lets the upgrade proceed.

    An upgrade from an address that already holds ``server.max_connections_per_ip`` connections
    is refused with HTTP 429 (``connections_from(ip)`` counts them).
    """
    cap = context.settings.max_connections_per_ip

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            body: dict[str, object] = {"status": "ok"}
            if is_loopback_peer(connection) or has_token(context, request):
                body.update(
                    server=context.server_name,
                    offline=context.offline,
                    connections=connections(),
                    tasks=len(asyncio.all_tasks()),
                )
            return _response(HTTPStatus.OK, json.dumps(body).encode() + b"\n", "application/json")
        route = context.registry.routes.get(path)
        if (
            route is not None
            and path == context.metrics_path
            and not (is_loopback_peer(connection) or has_token(context, request))
        ):
            response = _response(HTTPStatus.UNAUTHORIZED, b"unauthorized\n", "text/plain")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if route is not None:
            status, content_type, body_bytes = route()
            return _response(HTTPStatus(status), body_bytes, content_type)
        if "upgrade" not in request.headers.get("Connection", "").lower():
            return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        if connections_from is not None:
            address = connection.remote_address
            if address and connections_from(str(address[0])) >= cap:
                response = _response(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    b"too many connections from this address\n",
                    "text/plain",
                )
                response.headers["Retry-After"] = "1"
                return response
        return None

    return process_request
