"""What the client knows of NPC state: the last state seen per (npc, player), and listeners
called when it changes.

Every ``state`` frame (an answer to ``npc.state``, or a watched threshold crossing, which
belongs to no request) and every ``reply.end`` with ``state`` updates :attr:`StateView.known`;
then each listener is called with ``(npc, player, state, frame)`` (``player`` is None for the
NPC's own mood). A crossing's ``crossed`` list is in ``frame``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("npcbridge.client")

#: ``listener(npc, player, state, frame)``
StateListener = Callable[[str, str | None, dict[str, Any], dict[str, Any]], None]
_FIELDS = ("mood", "intensity", "relationship")


class StateView:
    """The NPC states one client has seen."""

    def __init__(self) -> None:
        #: (npc, player or None) -> {mood, intensity, relationship?}
        self.known: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.listeners: list[StateListener] = []

    def on_state(self, listener: StateListener) -> None:
        """Call ``listener`` whenever a state frame or a ``reply.end.state`` arrives."""
        self.listeners.append(listener)

    def seen(self, frame: dict[str, Any], player: str | None = None) -> None:
        """Take the state a server frame carries, if any (``player``: the reply's player)."""
        kind = frame.get("type")
        if kind == "state":
            body = {k: frame[k] for k in _FIELDS if k in frame}
            player = frame.get("player")
        elif kind == "reply.end" and isinstance(frame.get("state"), dict):
            body = dict(frame["state"])
            if player is None:  # a reply of a scene or a reaction: only the NPC's own mood
                body.pop("relationship", None)
        else:
            return
        npc = str(frame.get("npc", ""))
        self.known[(npc, player)] = body
        for listener in list(self.listeners):
            try:
                listener(npc, player, body, frame)
            except Exception:  # a listener's bug must not stop the read loop
                log.exception("state listener failed")
