"""What the scene suites share: the innkeeper persona the scenes add, and a connection with only
the members ``features.connection.Connection`` declares (for the scene manager without a socket)."""

from __future__ import annotations

import asyncio
from typing import Any

from npcbridge.protocol.messages import Persona

INNKEEPER = {
    "name": "Tilda",
    "description": "Keeps the tavern; hears every rumour about travellers and ale.",
    "knowledge": ["The mine road is flooded."],
}


class FakeConnection:
    """Only what features.connection.Connection declares: no ``turns``, no other attributes."""

    def __init__(self) -> None:
        self.id = "c1"
        self.npcs = {"innkeeper": Persona.model_validate(INNKEEPER)}
        self.sent: list[dict[str, Any]] = []
        self.state: dict[type, object] = {}
        self.tracked: dict[str | int, asyncio.Task[None]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in {"id", "npcs", "sent", "state", "tracked"}:
            raise AttributeError(f"a feature patched the connection: {name}")
        object.__setattr__(self, name, value)

    def send(self, frame: dict[str, Any]) -> None:
        """Record ``frame`` in ``sent``."""
        self.sent.append(frame)

    def track(self, request_id: str | int, coro: Any) -> asyncio.Task[None]:
        """Run ``coro`` as the request's task, kept in ``tracked``."""
        task = self.tracked[request_id] = asyncio.ensure_future(coro)
        return task

    def check_text(self, kind: str, text: str, request_id: str | int | None) -> None:
        """Accept every text."""

    def plugin_state(self, kind: type[Any]) -> Any:
        """This connection's one instance of ``kind``."""
        return self.state.setdefault(kind, kind())
