"""NPC memory kept in the store: the conversation window and long-term memories.

The builtin memory plugin (it replaced the in-process window). Per turn:

1. ``npcbridge_recall`` reads the newest turns of (npc, player) and its long-term memories,
   ranks the memories for the player's line and returns the top ones (within
   ``memory_tokens``) as one system message, followed by the complete turns as chat messages;
2. ``npcbridge_before_request`` (the model is chosen by then) drops the oldest exchanges until
   the window fits the model's context budget;
3. ``npcbridge_post_process`` (called last) stores the turn -- complete, cancelled or failed --
   before ``reply.end`` is sent, so every ``reply.end`` a client saw is durable;
4. ``npcbridge_after_turn`` stores turns that failed before any text, marks the recalled
   memories as recalled and schedules a background summary of turns past the window.

Every write goes through the store's :class:`~npcbridge.stores.writes.WriteQueue`: while the store
cannot be reached, writes wait in a bounded queue and are replayed in order once it answers
(the reply does not wait for them), and recall answers without memory, quietly.

Without a store (an App that was never started) every hook does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..pipeline.turn import RecalledMemory, Turn, TurnResult
from ..plugin.specs import hookimpl
from ..stores.base import Store, TurnRecord
from ..stores.writes import WriteQueue
from .handlers import MemoryHandlers
from .recall import memory_message, ranked, within_budget
from .settings import MemorySettings
from .summarize import Summarizer
from .tokens import fit_window, message_tokens, turn_messages

if TYPE_CHECKING:
    from ..plugin.api import PluginAPI

log = logging.getLogger("npcbridge.memory")

STATE_KEY = "npcbridge.memory"
FINISH_STATUS = {"stop": "complete", "length": "complete", "cancelled": "cancelled"}


def status_of(finish: str) -> str:
    """The stored status of a turn that ended with ``finish``."""
    return FINISH_STATUS.get(finish, "filtered" if finish == "filtered" else "error")


@dataclass
class TurnMemory:
    """What the plugin keeps in ``turn.state`` while a turn runs."""

    turns: list[TurnRecord] = field(default_factory=list)
    #: window turns and the message dicts inserted for them (matched by identity when trimming)
    window: list[tuple[TurnRecord, list[dict[str, str]]]] = field(default_factory=list)
    recalled_ids: list[int] = field(default_factory=list)
    stored: TurnRecord | None = None


class Plugin:
    """The builtin memory plugin (one per server)."""

    def __init__(self, api: PluginAPI) -> None:
        self.api = api
        self.settings = MemorySettings()
        self.summarizer = Summarizer(api, self.settings)
        self.handlers = MemoryHandlers(api, self.settings, self.summarizer)
        self.writes: WriteQueue | None = None

    # ---------------------------------------------------------------- lifecycle

    @hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """``[extra.memory]``."""
        register("memory", MemorySettings)

    @hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        """Take the validated ``[extra.memory]``; open the write queue and the summarizer."""
        settings = api.plugin_settings("memory")
        assert isinstance(settings, MemorySettings)
        self.settings = settings
        # the store's one write queue, shared with the gateway's budget settlements;
        # write_queue_max is its bound
        self.writes = api.writes
        if self.writes is not None:
            self.writes.limit = self.settings.write_queue_max
        self.summarizer = Summarizer(api, self.settings, self.writes)
        self.handlers = MemoryHandlers(api, self.settings, self.summarizer, self.writes)

    @hookimpl
    def npcbridge_register_handlers(self, register: Callable[..., None]) -> None:
        """Serve the ``memory.*`` messages."""
        self.handlers.register(register)

    @hookimpl
    def npcbridge_register_features(self, register: Callable[[str], None]) -> None:
        """Announce ``memory``."""
        register("memory")

    @hookimpl
    async def npcbridge_shutdown(self, api: PluginAPI) -> None:
        """Wait for summaries still being written and queued writes (the store closes after
        this, dropping what is still queued), each up to ``shutdown_wait_s``."""
        await self.summarizer.close()
        if self.writes is not None:
            await self.writes.drained(self.settings.shutdown_wait_s)

    # ---------------------------------------------------------------- one turn

    @hookimpl
    async def npcbridge_recall(self, turn: Turn) -> list[dict[str, Any]]:
        """Top long-term memories (one system message), then the recent complete exchanges.

        When the store fails the NPC answers without memory (logged) rather than not at all."""
        if self.api.store is None or turn.kind != "say":
            return []
        try:
            return await self._recall(turn)
        except Exception as exc:
            turn.state.pop(STATE_KEY, None)
            if self.writes is not None and self.writes.read_failed(exc):
                return []  # the outage is logged once by the write queue
            log.warning(
                "recall failed for npc=%s player=%s; answering without memory",
                turn.npc,
                turn.player,
                exc_info=True,
            )
            turn.state.pop(STATE_KEY, None)
            return []

    async def _recall(self, turn: Turn) -> list[dict[str, Any]]:
        store = self.api.store
        assert store is not None
        s = self.settings
        state = turn.state[STATE_KEY] = TurnMemory()
        state.turns = await store.recent_turns(
            turn.npc, turn.player, s.window_max_turns + 2 * s.summary_batch
        )
        memories = await store.memories(turn.npc, turn.player)
        complete = [t for t in state.turns if t.status == "complete"][-s.window_max_turns :]
        out: list[dict[str, Any]] = []
        if memories and s.recall_limit and s.memory_tokens:
            scored = await ranked(self.api, s, memories, turn.text, time.time())
            chosen = within_budget(scored, s.recall_limit, s.memory_tokens)
            if chosen:
                state.recalled_ids = [c.memory.id for c in chosen]
                turn.recalled = [
                    RecalledMemory(c.memory.text, c.memory.kind, c.memory.importance, c.score)
                    for c in chosen
                ]
                out.append(memory_message(turn.persona.name, turn.player, chosen))
        for record in complete:
            messages = turn_messages(record)
            state.window.append((record, messages))
            out.extend(messages)
        return out

    @hookimpl
    def npcbridge_before_request(self, turn: Turn) -> None:
        """Trim the window to the chosen model's budget (oldest exchanges go first)."""
        state: TurnMemory | None = turn.state.get(STATE_KEY)
        if state is None or not state.window or turn.model is None:
            return
        budget = self.window_budget(turn, state)
        kept = fit_window([record for record, _ in state.window], budget)
        kept_ids = {record.id for record in kept}
        dropped = {
            id(message)
            for record, messages in state.window
            if record.id not in kept_ids
            for message in messages
        }
        if dropped:
            turn.messages = [m for m in turn.messages if id(m) not in dropped]
            state.window = [(r, m) for r, m in state.window if r.id in kept_ids]

    def window_budget(self, turn: Turn, state: TurnMemory) -> int:
        """Tokens the window may use: a share of the model's context, less everything else
        in the prompt and the room kept for the reply."""
        assert turn.model is not None
        s = self.settings
        window_ids = {id(m) for _, messages in state.window for m in messages}
        other = sum(message_tokens(m) for m in turn.messages if id(m) not in window_ids)
        reserve = turn.max_tokens or s.reply_reserve_tokens
        context = turn.model.context_window
        budget = min(context - other - reserve, int(context * s.window_share))
        if s.window_max_tokens is not None:
            budget = min(budget, s.window_max_tokens)
        return max(0, budget)

    @hookimpl(trylast=True)
    async def npcbridge_post_process(self, turn: Turn, text: str, finish: str) -> None:
        """Store the finished turn before ``reply.end`` goes out (called after every other
        post-processor, so ``text`` is final)."""
        if turn.kind != "say" or self.api.store is None:
            return
        state = turn.state.setdefault(STATE_KEY, TurnMemory())
        model = turn.served_model or (turn.model.id if turn.model else "")
        write = asyncio.ensure_future(self._store(turn, text, finish, model))
        try:
            state.stored = await asyncio.shield(write)
        except asyncio.CancelledError:
            # a cancel that crosses the end of the reply: finish the write, the reply still ends
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            with contextlib.suppress(Exception):
                state.stored = await write
        except Exception:  # the reply still ends; after-turn tries once more
            log.exception("storing the turn of npc=%s player=%s failed", turn.npc, turn.player)

    @hookimpl
    async def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Store turns not stored yet, mark recalled memories, schedule a summary."""
        store = self.api.store
        if turn.kind != "say" or store is None:
            return
        state = turn.state.setdefault(STATE_KEY, TurnMemory())
        if state.stored is None:
            state.stored = await self._store(turn, result.text, result.finish, result.model)
        if state.recalled_ids:
            ids, at = state.recalled_ids, time.time()
            await self._write(lambda: store.touch_memories(turn.npc, turn.player, ids, at))
        if state.stored.status != "complete" or not state.stored.id:
            return  # nothing to summarise, or the turn waits in the queue (no id yet)
        window_ids = {record.id for record, _ in state.window} | {state.stored.id}
        try:
            watermark = await store.get_watermark(turn.npc, turn.player)
        except Exception as exc:
            if self.writes is not None and self.writes.read_failed(exc):
                return
            raise
        todo = self.summarizer.candidates([*state.turns, state.stored], window_ids, watermark)
        self.summarizer.schedule(turn.npc, turn.persona, turn.player, todo)

    async def _store(self, turn: Turn, text: str, finish: str, model: str) -> TurnRecord:
        assert self.api.store is not None
        record = TurnRecord(
            npc=turn.npc,
            player=turn.player,
            # hooks may have edited turn.text for the upstream (a say turn always has player_text)
            user_text=turn.player_text if turn.player_text is not None else turn.text,
            reply_text=text,
            status=status_of(finish),
            finish=finish,
            model=model,
            session_id=turn.session_id,
            request_id=str(turn.request_id),
            at=time.time(),
        )
        store: Store = self.api.store
        await self._write(lambda: store.append_turn(record))
        return record

    async def _write(self, fn: Any) -> bool:
        """Run a store write through the queue (directly when there is none)."""
        if self.writes is None:
            await fn()
            return True
        return await self.writes.write(fn)
