"""What the connection rules (:mod:`.connection`) are given: the server settings they read and
the lookups they make outside the connection, all of which answer at once (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .messages import ActionSpec, Persona


class TokenBucket(Protocol):
    """A message-rate bucket (:class:`npcbridge.gateway.bucket.Bucket` in the server)."""

    def try_take(self, amount: float = 1.0, now: float | None = None) -> float:
        """Take ``amount`` and return 0.0, or take nothing and return the seconds to wait."""


@dataclass(frozen=True)
class ConnectionSettings:
    """The server settings the connection rules read (``[server]`` in the config)."""

    #: the token ``hello`` must carry, None when the server needs none
    token: str | None
    max_in_flight: int
    max_bad_messages: int
    max_messages_per_s: float
    max_text_chars: int
    #: only announced in ``welcome.limits`` (the WebSocket layer enforces it)
    max_message_bytes: int


@dataclass(frozen=True)
class ServerParts:
    """What the rules look up outside the connection; all of it answers at once (no I/O)."""

    #: ``(npc, npcs defined on this connection) -> persona``; raises ``unknown_npc``
    persona: Callable[[str, Mapping[str, Persona]], Persona]
    #: a Character Card -> persona; raises ValueError naming what is wrong
    card_persona: Callable[[dict[str, Any]], Persona]
    #: why an action's parameter schema is unusable, or None
    action_problem: Callable[[ActionSpec], str | None]
    #: for a message type: None when no handler is registered, else whether it is cancellable
    handler: Callable[[str], bool | None]
    #: ``(rate per second, now) -> bucket`` holding one second's worth
    bucket: Callable[[float, float], TokenBucket]
    #: ``welcome.server``
    server_name: str
    #: ``welcome.models``
    models: tuple[str, ...]
    #: ``welcome.features``
    features: tuple[str, ...]
