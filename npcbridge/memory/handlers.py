"""The ``memory.*`` client messages (protocol v1, "Memory").

* ``memory.add`` {npc, player?, text, importance?} -> ``ok``: a fact; without ``player`` it is
  about the world and every player's recall of that NPC sees it.
* ``memory.forget`` {npc?, player} -> ``ok`` {removed}: the player's window, summaries and facts,
  for one NPC or everywhere; running summaries of that player are cancelled.
* ``memory.query`` {npc, player, text?, limit?} -> ``memory`` {items}: the long-term memories
  the NPC would recall for ``text``, best first, each with ``score``. Querying does not count
  as recalling (recency is left unchanged).

Each message runs as its own task (registered through ``npcbridge_register_handlers``): a
``say`` sent after a ``memory.add`` was answered ``ok`` recalls the fact. While the store cannot
be reached a ``memory.add`` is queued (and answered ``ok``), replayed in order when the store is
back; ``memory.forget`` and ``memory.query`` answer a retryable ``internal``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.frames import ok_frame
from ..protocol.messages import MemoryAdd, MemoryForget, MemoryQuery
from ..stores.base import MemoryRecord, Store
from ..stores.writes import WriteQueue
from .recall import ranked
from .settings import MemorySettings

if TYPE_CHECKING:
    from ..plugin.api import PluginAPI
    from .summarize import Summarizer

log = logging.getLogger("npcbridge.memory")

Handler = Callable[[Any, Any], Awaitable[None]]


def _guarded(handler: Handler, writes: WriteQueue | None) -> Handler:
    """A store failure answers ``internal`` (retryable) for that request; the connection lives.
    An outage is logged once by the write queue, other failures with their traceback."""

    @functools.wraps(handler)
    async def run(session: Any, message: Any) -> None:
        try:
            await handler(session, message)
        except ProtocolError:
            raise
        except Exception as exc:
            if writes is None or not writes.read_failed(exc):
                log.exception("%s failed", message.type)
            raise ProtocolError(
                ErrorCode.INTERNAL,
                "the memory store is unavailable; try again",
                request_id=getattr(message, "id", None),
                retryable=True,
            ) from None

    return run


class MemoryHandlers:
    """Serves the three message types for one server."""

    def __init__(
        self,
        api: PluginAPI,
        settings: MemorySettings,
        summarizer: Summarizer,
        writes: WriteQueue | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.summarizer = summarizer
        self.writes = writes

    def register(self, register: Callable[..., None]) -> None:
        """Serve the three types through ``npcbridge_register_handlers``'s ``register``."""
        register("memory.add", _guarded(self.add, self.writes))
        register("memory.forget", _guarded(self.forget, self.writes))
        register("memory.query", _guarded(self.query, self.writes))

    def _store(self, request_id: Any) -> Store:
        store = self.api.store
        if store is None:
            raise ProtocolError(
                ErrorCode.INTERNAL, "no store is open on this server", request_id=request_id
            )
        return store

    async def add(self, session: Any, message: MemoryAdd) -> None:
        """``memory.add``: store a fact about an NPC the connection can talk to (else
        ``unknown_npc``, as for ``say``)."""
        try:
            self.api.persona(message.npc, session.npcs)
        except ProtocolError as exc:
            exc.request_id = message.id
            raise
        store = self._store(message.id)
        now = time.time()
        fact = MemoryRecord(
            npc=message.npc,
            player=message.player or "",
            kind="fact",
            text=message.text,
            importance=message.importance,
            at=now,
            last_access=now,
        )
        if self.writes is None:
            await store.add_memory(fact)
        else:
            await self.writes.write(lambda: store.add_memory(fact))
        session.send(ok_frame(message.id))

    async def forget(self, session: Any, message: MemoryForget) -> None:
        """``memory.forget``: erase a player's data (one NPC or all)."""
        store = self._store(message.id)
        self.summarizer.cancel_for(message.player, message.npc)
        await self.api.call("npcbridge_forget_player", player=message.player, npc=message.npc)
        removed = await store.forget(message.player, message.npc)
        session.send(ok_frame(message.id, removed=removed))

    async def query(self, session: Any, message: MemoryQuery) -> None:
        """``memory.query``: the memories the NPC would recall, best first."""
        store = self._store(message.id)
        memories = await store.memories(message.npc, message.player)
        scored = await ranked(self.api, self.settings, memories, message.text or "", time.time())
        items = [
            {
                "text": s.memory.text,
                "kind": s.memory.kind,
                "importance": s.memory.importance,
                "at": float(s.memory.at),
                "score": round(float(s.score), 6),
            }
            for s in scored[: message.limit]
        ]
        session.send({"type": "memory", "id": message.id, "items": items})
