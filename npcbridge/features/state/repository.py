"""Reading and changing NPC state in the store.

The mood lives in the store document of ``(npc, "")`` (``mood``, ``intensity``, ``at``: when it
was felt, from which it decays), the relationship to a player in that of ``(npc, player)``.
Changes of one pair are serialised in this process (a read, the change, a write); across server
processes sharing a Redis store the last write wins. Writes go through the store's write queue,
so a change made while the store is down is kept and replayed. Every change is reported to
``listeners`` (the watched thresholds) with the values before and after it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...protocol.errors import ErrorCode, ProtocolError
from ...protocol.messages import StateSpec
from .model import RELATIONSHIP_KEYS, Values, decayed, relationship
from .settings import StateSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI
    from ...stores.base import Store

Send = Callable[[dict[str, Any]], None]
#: ``listener(npc, player, before, after, reason, origin)``; ``origin`` is the ``send`` of the
#: connection that is to hear of the change in any case (or None)
Listener = Callable[[str, str | None, Values, Values, str, Send | None], None]


class StateRepository:
    """Loads, changes and stores the state of NPCs for one server."""

    def __init__(self, api: PluginAPI, settings: StateSettings) -> None:
        self.api = api
        self.settings = settings
        self.listeners: list[Listener] = []
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _store(self) -> Store:
        store = self.api.store
        if store is None:
            raise ProtocolError(ErrorCode.INTERNAL, "no store is open on this server")
        return store

    def unavailable_errors(self) -> tuple[type[Exception], ...]:
        """What the store raises while it cannot be reached (nothing without a store)."""
        store = self.api.store
        return store.unavailable_errors if store is not None else ()

    def half_life(self, spec: StateSpec) -> float:
        """Seconds in which this NPC's felt mood halves."""
        return float(spec.mood_half_life_s or self.settings.mood_half_life_s)

    async def load(self, npc: str, spec: StateSpec, player: str | None) -> Values:
        """The NPC's state now (its mood decayed to this moment), with the relationship to
        ``player`` when one is given."""
        docs = await self._store().get_npc_states(npc, ["", player] if player else [""])
        mood, intensity = decayed(spec, docs.get(""), self.half_life(spec), time.time())
        values: Values = {"mood": mood, "intensity": intensity}
        if player:
            values.update(relationship(spec, docs.get(player)))
        return values

    async def change(
        self,
        npc: str,
        spec: StateSpec,
        player: str | None,
        update: Callable[[Values], Values],
        reason: str,
        origin: Send | None = None,
    ) -> Values:
        """Apply ``update`` to the current state of (npc, player), store what changed, tell the
        listeners (``origin``: a connection to tell even when it watches nothing crossed), and
        return the new values."""
        key = (npc, player or "")
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            before = await self.load(npc, spec, player)
            after = update(before)
            await self._save(npc, player, before, after)
        for listener in self.listeners:
            listener(npc, player, before, after, reason, origin)
        return after

    async def _save(self, npc: str, player: str | None, before: Values, after: Values) -> None:
        store = self._store()
        writes = self.api.writes
        jobs: list[Callable[[], Any]] = []
        if (after["mood"], after["intensity"]) != (before["mood"], before["intensity"]):
            mood = {"mood": after["mood"], "intensity": after["intensity"], "at": time.time()}
            jobs.append(lambda: store.put_npc_state(npc, "", mood))
        if player and any(after[k] != before[k] for k in RELATIONSHIP_KEYS):
            bond = {k: after[k] for k in RELATIONSHIP_KEYS}
            jobs.append(lambda: store.put_npc_state(npc, player, bond))
        for job in jobs:
            if writes is None:
                await job()
            else:
                await writes.write(job)
