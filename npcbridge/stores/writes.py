"""Store writes that outlive a store outage: a bounded queue, replayed in order.

One queue per store, built by the composition root and shared by everything that writes to the
store and must not lose the write: memory (turns, facts, summaries) and budget settlements (the
gateway's counter adds once a turn's real cost is known).

A store that cannot be reached (Redis restarting, a SQLite file locked for longer than its busy
timeout, a full disk) raises one of its backend's ``unavailable_errors``. :class:`WriteQueue`
turns that into a wait instead of a loss:

* while the store answers and nothing is queued, a write runs at once (``write`` returns True
  once it is committed);
* the first write that meets an unavailable store starts an *outage*: one warning is logged,
  that write and every later one go to an in-memory queue (``write`` returns False at once, so
  a reply never waits for a dead store), and a background task retries the oldest write with a
  short back-off;
* once the store answers again the task replays the queue in order (writes made meanwhile join
  its tail, so order is kept), and when the queue is empty the outage ends with one info line
  (duration, writes replayed, writes dropped);
* the queue holds at most ``limit`` writes; beyond it the oldest is dropped, counted through
  ``on_drop`` (``npcbridge_memory_writes_dropped_total``) and logged once per outage.

A read that meets an unavailable store reports it through :meth:`WriteQueue.read_failed`, which
starts an outage the same way (so the recovery line is logged once the store answers a probe).
No traceback is logged for any of this: the exception's class and one-line message say enough.

Replay is at least once: a write whose answer was lost in the connection's failure (the store
applied it, the reply never came) is written again. A queued write that fails for another reason
once the store is back (a bug, not an outage) is dropped, counted and logged with its traceback.
Writes queued at shutdown are given ``close``'s ``wait_s`` to drain; what is left is counted as
dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("npcbridge.store")

Write = Callable[[], Awaitable[Any]]

#: the counter read that asks a store whether it answers again (reads 0, never written)
PROBE_KEY = "probe:store-available"


def unavailable_errors(store: Any) -> tuple[type[BaseException], ...]:
    """The exception classes that mean ``store`` cannot be reached right now."""
    return tuple(getattr(store, "unavailable_errors", ()))


def _reason(exc: BaseException) -> str:
    """One short line about ``exc`` (class and first line of the message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


class WriteQueue:
    """Runs writes against one store, queueing them while the store is unavailable."""

    def __init__(
        self,
        store: Any,
        *,
        limit: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
        retry_s: float = 0.1,
        max_retry_s: float = 1.0,
    ) -> None:
        self.store = store
        self.limit = max(1, limit)
        self.on_drop = on_drop
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.errors = unavailable_errors(store)
        self.queue: collections.deque[Write] = collections.deque()
        #: monotonic time the current outage began (None: the store answers)
        self.down_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._replayed = 0
        self._dropped = 0
        self._drop_logged = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def down(self) -> bool:
        """True during an outage (until every queued write is replayed)."""
        return self.down_since is not None

    @property
    def pending(self) -> int:
        """Writes waiting in the queue."""
        return len(self.queue)

    def is_unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the store cannot be reached (not a bug in the write)."""
        return bool(self.errors) and isinstance(exc, self.errors)

    async def write(self, fn: Write) -> bool:
        """Run ``fn`` now (True once it returned) or queue it (False) during an outage.

        Exceptions that do not mean "unavailable" propagate to the caller."""
        if self.down or self.queue:
            self._enqueue(fn)
            return False
        try:
            await fn()
        except Exception as exc:
            if not self.is_unavailable(exc):
                raise
            self._outage(exc)
            self._enqueue(fn)
            return False
        return True

    def read_failed(self, exc: BaseException) -> bool:
        """Report a failed read: True (and an outage starts) when ``exc`` means unavailable,
        so the caller can carry on quietly; False when it is some other failure."""
        if not self.is_unavailable(exc):
            return False
        self._outage(exc)
        return True

    async def drained(self, wait_s: float | None = None) -> bool:
        """Wait (up to ``wait_s`` seconds) until the outage is over and the queue empty;
        False when the time ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    async def close(self, wait_s: float) -> None:
        """Give queued writes ``wait_s`` seconds to drain, then drop (and count) the rest."""
        await self.drained(wait_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.queue:
            left = len(self.queue)
            self.queue.clear()
            self._count_drop(left)
            log.warning(
                "store %s: %d writes were still queued at shutdown and are lost",
                self.store.name,
                left,
            )

    # ---------------------------------------------------------------- internals

    def _outage(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self._replayed = self._dropped = 0
            self._drop_logged = False
            self._idle.clear()
            log.warning(
                "store %s is unavailable (%s); writes (memory, budget settlements) wait in a "
                "queue of at most %d and are replayed when it answers again",
                self.store.name,
                _reason(exc),
                self.limit,
            )
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._recover(), name="store-write-replay")

    def _enqueue(self, fn: Write) -> None:
        self.queue.append(fn)
        overflow = len(self.queue) - self.limit
        for _ in range(max(0, overflow)):
            self.queue.popleft()
        if overflow > 0:
            self._dropped += overflow
            self._count_drop(overflow)
            if not self._drop_logged:
                self._drop_logged = True
                log.warning(
                    "store %s: the write queue is full (%d); the oldest writes are dropped "
                    "until the store answers again",
                    self.store.name,
                    self.limit,
                )

    def _count_drop(self, n: int) -> None:
        if self.on_drop is not None and n:
            self.on_drop(n)

    async def _recover(self) -> None:
        """Retry the oldest write (or a probe read) until the store answers, replay the queue,
        then end the outage."""
        delay = self.retry_s
        while True:
            try:
                if self.queue:
                    await self._replay_one()
                else:
                    await self.store.get_counter(PROBE_KEY)
            except Exception as exc:
                if not self.is_unavailable(exc):  # a bad write: already dropped, go on
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_s)
                continue
            delay = self.retry_s
            if not self.queue:
                break
        assert self.down_since is not None
        log.info(
            "store %s answers again after %.1f s: %d writes replayed, %d dropped",
            self.store.name,
            time.monotonic() - self.down_since,
            self._replayed,
            self._dropped,
        )
        self.down_since = None
        self._idle.set()

    async def _replay_one(self) -> None:
        fn = self.queue.popleft()
        try:
            await fn()
        except Exception as exc:
            if self.is_unavailable(exc):
                self.queue.appendleft(fn)  # still the oldest; retried after the back-off
                raise
            self._dropped += 1
            self._count_drop(1)
            log.exception("store %s: a queued write failed and is dropped", self.store.name)
            raise
        self._replayed += 1
