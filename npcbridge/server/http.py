"""Plain HTTP on the WebSocket port: ``GET /healthz`` (and ``/metrics`` when enabled)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

if TYPE_CHECKING:
    from ..app import App


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


def make_process_request(
    app: App,
    connections: Callable[[], int],
    connections_from: Callable[[str], int] | None = None,
) -> Callable[[ServerConnection, Request], Response | None]:
    """Answer HTTP paths before the WebSocket upgrade; None lets the upgrade proceed.

    An upgrade from an address that already holds ``server.max_connections_per_ip`` connections
    is refused with HTTP 429 (``connections_from(ip)`` counts them).
    """
    cap = app.config.server.max_connections_per_ip

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            body = {
                "status": "ok",
                "server": app.server_name,
                "offline": app.offline,
                "connections": connections(),
                "tasks": len(asyncio.all_tasks()),
            }
            return _response(HTTPStatus.OK, json.dumps(body).encode() + b"\n", "application/json")
        route = app.http_routes.get(path)
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
