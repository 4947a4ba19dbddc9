"""What a plugin's HTTP route receives and returns (``npcbridge_register_routes``).

Plain data with no I/O and no HTTP library behind it: the server parses the request, fills an
:class:`HttpRequest`, calls the route and writes its :class:`HttpResponse`. A route may be a plain
function or a coroutine function; it runs on the event loop, so it must not block.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpRequest:
    """One plain-HTTP request on the WebSocket port."""

    #: ``"GET"``, ``"POST"``, ...
    method: str
    #: the path without the query (``/console/index.html``)
    path: str
    #: the query parameters; of a repeated name the last value wins
    query: Mapping[str, str]
    #: the headers by lower-case name (repeated headers joined with ``", "``)
    headers: Mapping[str, str]
    body: bytes
    #: the peer's IP address
    peer: str
    #: a loopback peer, or ``Authorization: Bearer <server.token>``
    trusted: bool


@dataclass(frozen=True)
class HttpResponse:
    """The answer of a route; ``Content-Length`` and ``Server`` are added by the server."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


#: ``route(request) -> HttpResponse`` (or an awaitable of one)
Route = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
