"""What the connection state machine asks its transport to do.

:class:`~npcbridge.protocol.connection.ConnectionMachine` never runs anything itself: after each
input it holds frames to send and these events, which the transport (the asyncio session, a
test) acts on. Each event names a request that was already admitted (its id is in flight) or,
for :class:`Close`, the end of the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import CloseCode
from .messages import Message, Persona, Say


@dataclass(frozen=True, slots=True)
class Opened:
    """The handshake succeeded (``welcome`` is among the frames to send)."""

    #: the ``client`` string of the ``hello``
    client: str


@dataclass(frozen=True, slots=True)
class StartTurn:
    """Run a ``say`` as a turn; tell the machine with ``request_done`` when it ends."""

    request_id: str | int
    say: Say
    #: the NPC's persona: defined on this connection, else the server's
    persona: Persona


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel the running request ``request_id`` (a turn or a tracked handler); it still ends
    through ``request_done``. ``barge_in``: the player spoke over the NPC (the reply ends with
    the text already voiced)."""

    request_id: str | int
    barge_in: bool = False


@dataclass(frozen=True, slots=True)
class RunHandler:
    """Run the handler registered for ``message.type``.

    ``tracked``: the handler is cancellable and the message has an id, which the machine
    admitted: run it as an in-flight request and call ``request_done`` when it ends. Otherwise
    run it on its own; a :class:`~npcbridge.protocol.ProtocolError` it raises goes back through
    ``handler_refused``.
    """

    message: Message
    #: the decoded map the message was validated from
    raw: dict[str, Any]
    tracked: bool

    @property
    def type(self) -> str:
        """The message type (the handler's key)."""
        return self.message.type

    @property
    def request_id(self) -> str | int | None:
        """The message's ``id``, when it has one."""
        value = getattr(self.message, "id", None)
        return value if isinstance(value, (str, int)) else None


@dataclass(frozen=True, slots=True)
class RunExtension:
    """Offer an ``x.*`` message no handler is registered for to the extension hook; a
    :class:`~npcbridge.protocol.ProtocolError` it raises goes back through ``handler_refused``."""

    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    """Send what is queued, then close the WebSocket with ``code`` and ``reason``. The machine
    ignores every input after it."""

    code: CloseCode
    reason: str


Event = Opened | StartTurn | CancelRequest | RunHandler | RunExtension | Close
