"""What the connection machine's suites share: a machine with the default server settings (no
sockets, no clock), feeding it one message, an opened machine, a say and the one error out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from npcbridge.builtin.persona import persona_from_card
from npcbridge.gateway.bucket import Bucket
from npcbridge.pipeline.actions import check_schema
from npcbridge.protocol import ErrorCode, Persona, ProtocolError, pack
from npcbridge.protocol.connection import ConnectionMachine
from npcbridge.protocol.connection_parts import ConnectionSettings, ServerParts

SMITH = Persona.model_validate({"name": "Brom"})
HANDLERS = {"quest.generate": True, "memory.add": False}


def _persona(npc: str, defined: Mapping[str, Persona]) -> Persona:
    """The server's persona lookup: the connection's own, else the blacksmith."""
    persona = defined.get(npc) or {"blacksmith": SMITH}.get(npc)
    if persona is None:
        raise ProtocolError(ErrorCode.UNKNOWN_NPC, "field 'npc': unknown npc; define it first")
    return persona


def machine(now: float = 0.0, **settings: Any) -> ConnectionMachine:
    """A machine with the default server settings (overridden by ``settings``)."""
    values: dict[str, Any] = {
        "token": None,
        "max_in_flight": 8,
        "max_bad_messages": 10,
        "max_messages_per_s": 1000.0,
        "max_text_chars": 4000,
        "max_message_bytes": 65536,
    }
    values.update(settings)
    parts = ServerParts(
        persona=_persona,
        card_persona=persona_from_card,
        action_problem=check_schema,
        handler=HANDLERS.get,
        bucket=lambda rate, at: Bucket.per_second(rate, clock=lambda: at),
        server_name="npcbridge/test",
        models=("m-small", "m-large"),
        features=("stream", "cancel"),
    )
    return ConnectionMachine("c0ffee42", ConnectionSettings(**values), parts, now)


def feed(m: ConnectionMachine, message: dict[str, Any] | bytes | str, now: float = 0.0) -> list:
    """Feed one message; return the frames and events it produced, in that order."""
    data = pack(message) if isinstance(message, dict) else message
    m.receive_data(data, now)
    return [*m.frames_to_send(), *m.events_received()]


def opened(now: float = 0.0, **settings: Any) -> ConnectionMachine:
    """A machine that has answered a hello (open, before any request)."""
    m = machine(now, **settings)
    feed(m, {"type": "hello", "protocol": 1, "client": "test"}, now)
    return m


def say(request_id: Any = "t-1", npc: str = "blacksmith", **fields: Any) -> dict[str, Any]:
    """A say message from player p1 (``fields`` added or overridden)."""
    return {"type": "say", "id": request_id, "npc": npc, "player": "p1", "text": "hi", **fields}


def error(out: list) -> dict[str, Any]:
    """The one frame in ``out``, which must be an error."""
    (frame,) = [o for o in out if isinstance(o, dict)]
    assert frame["type"] == "error"
    return frame
