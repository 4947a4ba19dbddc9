"""Background work of a plugin, at most one task per (npc, player) pair at a time.

The reply never waits for such work (a summary, a judgement). Each task is tracked until it is
done, so a ``memory.forget`` can cancel a player's tasks and shutdown can wait for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

#: an (npc, player) pair
PairKey = tuple[str, str]


class PairTasks:
    """Running background tasks, one per (npc, player) pair."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.busy: dict[PairKey, asyncio.Task[None]] = {}

    def start(self, key: PairKey, work: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run ``work()`` as a task of ``key`` unless one of the pair runs (then False, and
        ``work`` is not called); the task is forgotten when it is done."""
        if key in self.busy:
            return False
        task = asyncio.create_task(work())
        self.tasks.add(task)
        self.busy[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            if self.busy.get(key) is t:
                del self.busy[key]

        task.add_done_callback(done)
        return True

    def cancel_for(self, player: str, npc: str | None = None) -> None:
        """Cancel the running tasks of a player (with one NPC, or all)."""
        for (n, p), task in list(self.busy.items()):
            if p == player and (npc is None or n == npc):
                task.cancel()

    async def close(self, wait_s: float) -> None:
        """Wait for running tasks (up to ``wait_s`` seconds), then cancel the rest."""
        if not self.tasks:
            return
        _, still = await asyncio.wait(set(self.tasks), timeout=wait_s)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=2)
