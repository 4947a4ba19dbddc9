"""What the gameplay features use of a client connection.

Feature handlers receive the server's session (a WebSocket
:class:`npcbridge.server.session.Session` or an HTTP-transport
:class:`npcbridge.server.http_session.HttpSession`) and use only this much of it: its id, the
NPCs defined on it, sending frames, running a request as a cancellable in-flight task, the
server's text-length check, and a typed place for per-connection state. Nothing else of the
session is read or written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from ..protocol.messages import Persona

S = TypeVar("S")


class Connection(Protocol):
    """The part of a client connection the features rely on."""

    #: the connection's id (``welcome.session``)
    id: str
    #: NPCs defined on this connection with ``npc.define`` (read only)
    npcs: dict[str, Persona]

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame for the client."""

    def track(self, request_id: str | int, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``coro`` in flight under ``request_id`` (``cancel`` stops it); the task."""

    def check_text(self, kind: str, text: str, request_id: str | int | None) -> None:
        """Refuse a line longer than ``server.max_text_chars``."""

    def plugin_state(self, kind: type[S]) -> S:
        """This connection's instance of ``kind`` (made by ``kind()`` on first use)."""
