"""One instant after which reading a stream stops, with a single timer for the whole stream.

``asyncio.timeout_at`` around every read of a stream costs a timer per event (~5 µs each, every
delta of every turn); :class:`StreamDeadline` arms one timer per stream instead, and interrupts
only a read that is under way when it fires. A read that starts after the instant fails at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


class StreamDeadline:
    """Reads of async iterators that raise :class:`TimeoutError` once ``when`` (loop time) has
    passed. Create it inside the task that reads; :meth:`close` it when the stream is done."""

    def __init__(self, when: float) -> None:
        self.when = when
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._reading = False
        self._fired = False
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        if self._reading and self._task is not None:
            self._fired = True
            self._task.cancel()

    async def next(self, iterator: AsyncIterator[T]) -> T:
        """``await iterator.__anext__()``, or :class:`TimeoutError` once the instant passed."""
        if self._loop.time() >= self.when:
            raise TimeoutError
        self._reading = True
        try:
            return await iterator.__anext__()
        except asyncio.CancelledError:
            # our own cancel becomes a timeout; anyone else's (a cancelled turn) stays a cancel
            if self._fired and self._task is not None and self._task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self._reading = False

    def close(self) -> None:
        """Disarm the timer."""
        self._handle.cancel()
