"""A group scene's state: its NPCs, transcript and running exchange.

A scene belongs to one connection; :class:`ConnectionScenes` is the connection's table of them
(kept in the connection's ``plugin_state``). While an NPC answers in a scene, its turn carries the
scene (:func:`scene_of`).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ...pipeline.turn import Turn
from ...protocol.messages import Persona

#: where a scene turn carries its scene (``turn.state`` is keyed by plugin)
STATE_KEY = "scene"


@dataclass
class Line:
    """One line of a scene's transcript (``speaker`` is an NPC id, or None for the player)."""

    speaker: str | None
    name: str
    text: str


@dataclass
class Scene:
    """One running scene."""

    name: str
    player: str
    player_name: str
    personas: dict[str, Persona]
    context: dict[str, Any]
    max_replies: int
    transcript: deque[Line]
    spoken: Counter[str] = field(default_factory=Counter)
    #: the running exchange, its request id, and the NPC speaking right now
    task: asyncio.Task[Any] | None = None
    request_id: str | int | None = None
    speaking: str | None = None
    interrupted: bool = False

    @property
    def npcs(self) -> list[str]:
        """NPC ids in scene order."""
        return list(self.personas)

    def names(self) -> dict[str, str]:
        """{npc id: persona name}."""
        return {npc: p.name for npc, p in self.personas.items()}


@dataclass
class ConnectionScenes:
    """The scenes one connection keeps open, by name (they end with the connection)."""

    by_name: dict[str, Scene] = field(default_factory=dict)


def scene_of(turn: Turn) -> Scene | None:
    """The scene a turn answers in, or None (not a scene turn)."""
    scene = turn.state.get(STATE_KEY)
    return scene if isinstance(scene, Scene) else None
