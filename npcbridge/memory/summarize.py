"""Long-term memory from old turns: summaries written in the background.

When enough complete turns of a (npc, player) pair lie beyond the conversation window and
past the summary watermark, one background task asks a cheap model (through ``api.turns``,
with a :class:`~npcbridge.pipeline.turn.Turn` of kind ``"summary"``, so budgets, rate limits and
retries apply as to any turn) to summarise them, stores the summary as a ``summary`` memory and
advances the watermark. The player's reply never waits for it.

One summary per pair runs at a time: in-process by a set of busy pairs, across processes (a
shared store) by a lease counter with a TTL. Tasks are tracked; :meth:`Summarizer.close` waits
for them at shutdown (then cancels what is left).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..gateway.catalog import ModelEntry
from ..pipeline.turn import Turn
from ..protocol.messages import Persona
from ..providers.base import ProviderRequest, TextDelta
from ..stores.base import MemoryRecord, TurnRecord
from ..stores.writes import WriteQueue
from .settings import MemorySettings

if TYPE_CHECKING:
    from ..plugin.api import PluginAPI

log = logging.getLogger("npcbridge.memory")

LEASE_TTL_S = 120.0

SUMMARY_INSTRUCTIONS = (
    "You keep the long-term memory of {name}, a character in a game. Summarise the "
    "conversation below between {name} and the player {player} in at most three short "
    "sentences, from {name}'s point of view: what {name} learned about {player}, what was "
    "promised or agreed, and how {name} feels about {player}. Plain text, no preamble."
)


def cheap_model(api: PluginAPI, settings: MemorySettings) -> ModelEntry:
    """The summary model: the configured one, else the cheapest "small" model."""
    if settings.summary_model:
        return api.model_entry(settings.summary_model)
    if api.offline:
        return api.model_entry("offline")
    return api.catalog.cheapest("small") or api.model_entry(api.default_model)


def transcript(turns: list[TurnRecord], npc_name: str, player: str) -> str:
    """The turns as plain dialogue lines."""
    lines = []
    for t in turns:
        lines.append(f"{player}: {t.user_text}")
        lines.append(f"{npc_name}: {t.reply_text}")
    return "\n".join(lines)


class Summarizer:
    """Schedules and runs summaries for one server."""

    def __init__(
        self, api: PluginAPI, settings: MemorySettings, writes: WriteQueue | None = None
    ) -> None:
        self.api = api
        self.settings = settings
        #: the memory plugin's write queue (summaries written during an outage wait in it)
        self.writes = writes
        self.tasks: set[asyncio.Task[None]] = set()
        self.busy: dict[tuple[str, str], asyncio.Task[None]] = {}

    def candidates(
        self, turns: list[TurnRecord], window_ids: set[int], watermark: int
    ) -> list[TurnRecord]:
        """Complete turns older than the window and newer than the watermark."""
        oldest_in_window = min(window_ids) if window_ids else None
        return [
            t
            for t in turns
            if t.status == "complete"
            and t.id > watermark
            and t.id not in window_ids
            and (oldest_in_window is None or t.id < oldest_in_window)
        ]

    def schedule(self, npc: str, persona: Persona, player: str, turns: list[TurnRecord]) -> bool:
        """Start a background summary of ``turns`` unless one runs for the pair already."""
        key = (npc, player)
        if key in self.busy or len(turns) < self.settings.summary_batch:
            return False
        task = asyncio.create_task(self._run(npc, persona, player, turns))
        self.tasks.add(task)
        self.busy[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            if self.busy.get(key) is t:
                del self.busy[key]

        task.add_done_callback(done)
        return True

    async def _run(self, npc: str, persona: Persona, player: str, turns: list[TurnRecord]) -> None:
        store = self.api.store
        if store is None:
            return
        lease = f"lease:summary:{len(npc)}:{npc}:{player}"
        try:
            if store.shared and await store.add_counter(lease, 1, ttl_s=LEASE_TTL_S) > 1:
                await store.add_counter(lease, -1)
                return  # another process summarises this pair right now
        except Exception as exc:
            self._failed(npc, player, exc)
            return
        try:
            text = await self.summarise(npc, persona, player, turns)
            if not text:
                return
            # the player may have been forgotten while the model wrote: then store nothing
            latest = await store.recent_turns(npc, player, 1)
            if not latest or latest[-1].id < turns[-1].id:
                return
            summary = MemoryRecord(
                npc=npc,
                player=player,
                kind="summary",
                text=text,
                importance=self.settings.summary_importance,
                at=turns[-1].at,
                last_access=time.time(),
            )
            await self._write(lambda: store.add_memory(summary))
            await self._write(lambda: store.set_watermark(npc, player, turns[-1].id))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(npc, player, exc)
        finally:
            if store.shared:
                try:
                    await store.add_counter(lease, -1)
                except Exception as exc:  # the lease's TTL frees it
                    self._failed(npc, player, exc)

    def _failed(self, npc: str, player: str, exc: Exception) -> None:
        """Log a failed summary, except a store outage (the write queue logs that once)."""
        if self.writes is None or not self.writes.read_failed(exc):
            log.warning("summary for npc=%s player=%s failed", npc, player, exc_info=exc)

    async def _write(self, fn: Callable[[], Awaitable[object]]) -> None:
        """A store write, through the write queue when there is one."""
        if self.writes is None:
            await fn()
        else:
            await self.writes.write(fn)

    async def summarise(
        self, npc: str, persona: Persona, player: str, turns: list[TurnRecord]
    ) -> str:
        """Ask the cheap model for a summary of ``turns``; return its text (stripped)."""
        model = cheap_model(self.api, self.settings)
        dialogue = transcript(turns, persona.name, player)
        messages = [
            {
                "role": "system",
                "content": SUMMARY_INSTRUCTIONS.format(name=persona.name, player=player),
            },
            {"role": "user", "content": dialogue},
        ]
        turn = Turn(
            request_id=f"summary-{npc}-{player}-{turns[-1].id}",
            npc=npc,
            persona=persona,
            player=player,
            text=dialogue,
            session_id="memory",
            kind="summary",
            max_tokens=self.settings.summary_max_tokens,
            temperature=0.2,
        )
        turn.model = model
        turn.messages = messages
        request = ProviderRequest(
            model=model.id,
            messages=messages,
            max_tokens=self.settings.summary_max_tokens,
            temperature=0.2,
            persona_name=persona.name,
            kind="summary",
        )
        parts: list[str] = []
        async for event in self.api.turns.stream(turn, model, request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
        return "".join(parts).strip()

    def cancel_for(self, player: str, npc: str | None = None) -> None:
        """Cancel running summaries of a player (``memory.forget``)."""
        for (n, p), task in list(self.busy.items()):
            if p == player and (npc is None or n == npc):
                task.cancel()

    async def close(self) -> None:
        """Wait for running summaries (up to ``shutdown_wait_s``), then cancel the rest."""
        if not self.tasks:
            return
        pending = set(self.tasks)
        _, still = await asyncio.wait(pending, timeout=self.settings.shutdown_wait_s)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=2)
