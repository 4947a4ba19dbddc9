"""The store interface: what npcbridge keeps between turns, and across server processes.

A store holds four kinds of data:

* **Counters** -- generic atomic float counters with an optional time-to-live, for budgets and
  shared rate-limit state (the gateway uses them). ``add_counter(key, amount, ttl_s)`` adds
  atomically and returns the new total; the TTL is set when the counter is created (or has
  expired) and later adds do not extend it, so ``ttl_s`` gives fixed windows
  (``"rl:groq:" + str(int(now // 60))`` with ``ttl_s=60`` counts one minute). An expired counter
  reads 0. ``get_counter`` of an unknown key is 0. Keys are opaque strings; pick a prefix per
  feature (``budget:``, ``rl:``). ``reserve_counters`` adds to several counters at once only
  if each stays within its limit (budgets reserve a turn's worst case with it): the check and
  the adds are one atomic step, also across processes sharing the store.
* **Turns** -- every ``say`` exchange once it is over, with its status (``complete``,
  ``cancelled``, ``error``, ``filtered``); only complete turns make the conversation window.
* **Memories** -- long-term items per (npc, player): ``fact`` (from ``memory.add``) and
  ``summary`` (older turns summarised), with importance 1..10 and the time they were last
  recalled. ``player == ""`` holds facts about the world that every player's recall sees.
* **Summary watermarks** -- per (npc, player), the id of the newest turn already summarised.
* **NPC state** -- one JSON document per (npc, player) written by the state feature
  (``features/state``): ``player == ""`` holds the NPC's own mood, any other player the NPC's
  relationship to that player. The store keeps the document as given (last write wins).

``shared`` is True when several server processes see the same data (Redis; a SQLite file the
workers of ``npcbridge serve --workers N`` share, which the composition root then marks shared),
False for an embedded SQLite file of one process. Every method is a coroutine and never waits
on the event loop: for locks, the network or an fsync it yields (SQLite's short indexed reads
run inline, see :mod:`npcbridge.stores.sqlite_db`).

Backends: :mod:`npcbridge.stores.sqlite` (a file path, ``sqlite:///path`` or ``:memory:``) and
:mod:`npcbridge.stores.redis` (``redis://``, ``rediss://``, ``unix://``), chosen by
:func:`npcbridge.stores.open_store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: statuses a stored turn can have; only "complete" turns are replayed in the window
TURN_STATUSES = ("complete", "cancelled", "error", "filtered")
#: kinds of long-term memory
MEMORY_KINDS = ("fact", "summary")


#: (key, amount, limit, ttl_s) for :meth:`Store.reserve_counters`
CounterLimit = tuple[str, float, float, float | None]


def refuses(value: float, amount: float, limit: float) -> bool:
    """Whether a counter at ``value`` cannot take ``amount`` more under ``limit`` (a counter at
    or past its limit takes nothing, not even a zero amount)."""
    return value >= limit or value + amount > limit


class StoreError(Exception):
    """A store could not be opened or used; the message is one line that names the store."""


@dataclass
class TurnRecord:
    """One finished exchange between a player and an NPC."""

    npc: str
    player: str
    user_text: str
    reply_text: str
    status: str
    at: float
    finish: str = ""
    model: str = ""
    session_id: str = ""
    request_id: str = ""
    #: assigned by the store (increasing over the whole store)
    id: int = 0


@dataclass
class MemoryRecord:
    """One long-term memory."""

    npc: str
    player: str
    kind: str
    text: str
    importance: int
    at: float
    #: when it was last recalled into a prompt (creation time until then)
    last_access: float = 0.0
    id: int = 0
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    """What every store backend implements."""

    #: True when several server processes share this store's data
    shared: bool
    #: a printable name (the URL without password)
    name: str
    #: exceptions meaning "cannot be reached right now": memory writes that meet one wait in
    #: a queue (:mod:`npcbridge.stores.writes`) instead of being lost
    unavailable_errors: tuple[type[Exception], ...]

    async def close(self) -> None:
        """Flush and release the connection; safe to call twice."""

    # ---------------------------------------------------------------- counters

    async def add_counter(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        """Atomically add ``amount`` to counter ``key`` and return the new total.

        When the counter does not exist (or expired) it starts at 0 and, if ``ttl_s`` is given,
        expires ``ttl_s`` seconds later; adds to a live counter keep its expiry.
        """
        ...

    async def get_counter(self, key: str) -> float:
        """The counter's value; 0.0 when it does not exist or expired."""
        ...

    async def reserve_counters(self, items: list[CounterLimit]) -> int | None:
        """Atomically: unless a counter's value :func:`refuses` its item's amount under its
        limit, add every item's amount (with ``add_counter``'s TTL rule) and return None;
        otherwise add nothing and return the index of the first item that does not fit."""
        ...

    # ---------------------------------------------------------------- turns

    async def append_turn(self, turn: TurnRecord) -> int:
        """Store a finished turn durably (committed when this returns); return its id."""
        ...

    async def recent_turns(self, npc: str, player: str, limit: int) -> list[TurnRecord]:
        """The newest ``limit`` turns of (npc, player) of any status, oldest first."""
        ...

    async def get_watermark(self, npc: str, player: str) -> int:
        """The id of the newest turn of (npc, player) already summarised (0 if none)."""
        ...

    async def set_watermark(self, npc: str, player: str, turn_id: int) -> None:
        """Record that turns up to ``turn_id`` are summarised (never moves backwards)."""
        ...

    # ---------------------------------------------------------------- memories

    async def add_memory(self, memory: MemoryRecord) -> int:
        """Store a long-term memory; return its id."""
        ...

    async def memories(self, npc: str, player: str) -> list[MemoryRecord]:
        """All long-term memories of ``npc`` about ``player`` plus its world facts
        (``player == ""``), oldest first."""
        ...

    async def touch_memories(self, npc: str, player: str, ids: list[int], at: float) -> None:
        """Mark memories as recalled at ``at`` (recency counts from the last recall)."""
        ...

    # ---------------------------------------------------------------- NPC state

    async def get_npc_states(self, npc: str, players: list[str]) -> dict[str, dict[str, Any]]:
        """The state documents of ``npc`` for each of ``players`` that has one, by player
        (``""``: the NPC's own), in one round trip."""
        ...

    async def put_npc_state(self, npc: str, player: str, data: dict[str, Any]) -> None:
        """Store the state document of (npc, player) durably, replacing the previous one."""
        ...

    # ---------------------------------------------------------------- erasure

    async def forget(self, player: str, npc: str | None = None) -> int:
        """Erase a player's turns, memories, watermarks and relationship state, for one NPC or
        (``npc=None``) every NPC; return how many turns, memories and state documents were
        removed. World facts and the NPCs' own state (``player == ""``) stay."""
        ...
