"""Thresholds a connection watches, and the ``state`` frame sent when a change crosses one.

A numeric watch names one bound: ``below`` (the value is *in* while it is lower) or ``above``
(in while higher). A change that takes the value in sends ``direction: "entered"``, one that
takes it out ``"left"``. A ``mood`` watch fires ``"changed"`` whenever the mood's name changes.
Watches belong to the connection that made them (they end with it) and see every change made
in this server process: turns of any connection, judgements, world events, ``npc.state``.
Mood watches fire for every player's pair of that NPC (the mood is the NPC's own).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...protocol.errors import ErrorCode, ProtocolError
from ...protocol.messages import StateWatch
from .model import RELATIONSHIP_KEYS, Values, view

#: the keys of the NPC's own mood (watched for every player's pair)
MOOD_KEYS = ("mood", "intensity")


@dataclass(frozen=True)
class Watch:
    """One watched threshold."""

    name: str
    key: str
    below: float | None = None
    above: float | None = None

    @classmethod
    def from_message(cls, spec: StateWatch, player: str | None) -> Watch:
        """A checked watch: one bound for a number, none for ``mood``, a player for a
        relationship key."""
        name = spec.name or spec.key
        if spec.key in RELATIONSHIP_KEYS and not player:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "field 'watch': a relationship key needs 'player'"
            )
        if spec.key == "mood":
            if spec.below is not None or spec.above is not None:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, "field 'watch': a 'mood' watch takes no bound"
                )
        elif (spec.below is None) == (spec.above is None):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "field 'watch': a numeric watch gives exactly one of 'below', 'above'",
            )
        below = float(spec.below) if spec.below is not None else None
        above = float(spec.above) if spec.above is not None else None
        return cls(name, spec.key, below, above)

    def inside(self, value: float) -> bool:
        """Whether ``value`` lies past the bound."""
        return value < self.below if self.below is not None else value > float(self.above or 0)

    def crossing(self, before: Values, after: Values) -> dict[str, Any] | None:
        """The ``crossed`` entry when the change from ``before`` to ``after`` crosses it."""
        if self.key not in after or self.key not in before:
            return None
        old, new = before[self.key], after[self.key]
        entry: dict[str, Any] = {"name": self.name, "key": self.key, "value": new}
        if self.key == "mood":
            return {**entry, "direction": "changed"} if old != new else None
        was, now = self.inside(float(old)), self.inside(float(new))
        if was == now:
            return None
        bound = {"below": self.below} if self.below is not None else {"above": self.above}
        return {**entry, **bound, "direction": "entered" if now else "left"}


def state_frame(
    npc: str, player: str | None, values: Values, reason: str, crossed: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``state`` frame without id: a change (``crossed``: the watches it crossed)."""
    frame: dict[str, Any] = {"type": "state", "npc": npc}
    if player:
        frame["player"] = player
    frame.update(view(values), reason=reason)
    if crossed:
        frame["crossed"] = crossed
    return frame


@dataclass(eq=False)
class ConnectionWatches:
    """The watches of one connection, by (npc, player) then name (``session.plugin_state``).

    ``send`` is a weak reference to the connection's ``send``, so the watches hold no
    connection alive: they end with it."""

    pairs: dict[tuple[str, str | None], dict[str, Watch]] = field(default_factory=dict)
    send_ref: weakref.WeakMethod[Callable[[dict[str, Any]], None]] | None = None


class WatchRegistry:
    """Every connection's watches in this process; tells them about changes."""

    def __init__(self) -> None:
        self._connections: weakref.WeakSet[ConnectionWatches] = weakref.WeakSet()

    def add(self, watches: ConnectionWatches) -> None:
        """Start telling ``watches`` about changes."""
        self._connections.add(watches)

    def changed(
        self,
        npc: str,
        player: str | None,
        before: Values,
        after: Values,
        reason: str,
        origin: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """A change of (npc, player) (a repository listener): every connection gets a ``state``
        frame per watched pair with a crossing; ``origin``'s connection also gets the change
        of the pair itself when the values changed (its crossings in that same frame)."""
        owner = getattr(origin, "__self__", None)
        origin_told = origin is None or before == after
        for watches in list(self._connections):
            send = watches.send_ref() if watches.send_ref is not None else None
            if send is None:
                continue
            frames = self._crossings(watches, npc, player, before, after, reason)
            if not origin_told and getattr(send, "__self__", None) is owner:
                origin_told = True
                if (npc, player) not in frames:
                    frames[(npc, player)] = state_frame(npc, player, after, reason, [])
            for frame in frames.values():
                send(frame)
        if not origin_told and origin is not None:
            origin(state_frame(npc, player, after, reason, []))

    @staticmethod
    def _crossings(
        watches: ConnectionWatches,
        npc: str,
        player: str | None,
        before: Values,
        after: Values,
        reason: str,
    ) -> dict[tuple[str, str | None], dict[str, Any]]:
        """The frames of ``watches``' pairs whose watches the change crossed, by pair."""
        out: dict[tuple[str, str | None], dict[str, Any]] = {}
        for (w_npc, w_player), named in watches.pairs.items():
            if w_npc != npc:
                continue
            same_pair = w_player == player
            crossed = [
                entry
                for watch in named.values()
                if same_pair or watch.key in MOOD_KEYS
                if (entry := watch.crossing(before, after)) is not None
            ]
            if crossed:
                values = after if same_pair else {k: after[k] for k in MOOD_KEYS}
                out[(w_npc, w_player)] = state_frame(npc, w_player, values, reason, crossed)
        return out
