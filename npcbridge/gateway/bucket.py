"""A token bucket: the one rate-limit primitive of the server.

The gateway's per-model limiters hold one per configured limit (:mod:`.ratelimit`); the server
holds one per connection and per player for the message rate (:meth:`Bucket.per_second`).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Bucket:
    """A token bucket: ``limit`` per ``period_s``, holding at most ``capacity`` (``burst``, when
    given and smaller than the limit; only the per-minute request bucket takes one)."""

    def __init__(
        self,
        limit: float,
        period_s: float,
        unit: str,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period_s = period_s
        self.unit = unit
        self.burst = burst
        self.clock = clock
        self.limit = float(limit)
        self.capacity = self._capacity()
        self.level = self.capacity
        self.updated = clock()
        #: a faster refill learnt from a reset header, valid until the bucket is full again
        self.boost_rate = 0.0

    @classmethod
    def per_second(cls, rate: float, clock: Callable[[], float] = time.monotonic) -> Bucket:
        """``rate`` per second holding ``max(1, rate)``: a whole unit is always possible (the
        server's per-connection and per-player message limits)."""
        capacity = max(1.0, rate)
        return cls(capacity, capacity / rate, "messages", clock=clock)

    def _capacity(self) -> float:
        return min(float(self.burst), self.limit) if self.burst else self.limit

    @property
    def rate(self) -> float:
        """Refill rate in units per second."""
        return max(self.limit / self.period_s, self.boost_rate)

    def refill(self, now: float | None = None) -> None:
        """Add what accrued since the last update."""
        now = self.clock() if now is None else now
        elapsed = max(0.0, now - self.updated)
        self.updated = now
        self.level = min(self.capacity, self.level + elapsed * self.rate)
        if self.level >= self.capacity:
            self.boost_rate = 0.0

    def wait_s(self, amount: float, now: float | None = None) -> float:
        """Seconds until ``amount`` (capped at the capacity) is available."""
        self.refill(now)
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float, now: float | None = None) -> None:
        """Remove ``amount`` (the level may go negative: a debt repaid by the refill)."""
        self.refill(now)
        self.level -= amount

    def try_take(self, amount: float = 1.0, now: float | None = None) -> float:
        """Take ``amount`` when it is there and return 0.0; else take nothing and return the
        seconds until it is."""
        wait = self.wait_s(amount, now)
        if not wait:
            self.level -= amount
        return wait

    def give_back(self, amount: float) -> None:
        """Return ``amount`` (an estimate that was too high, or a request that never went)."""
        self.refill()
        self.level = min(self.capacity, self.level + amount)

    def correct(self, limit: float | None, remaining: float | None, reset_s: float | None) -> None:
        """Apply what the upstream said: its limit, what remains, and when it is full again."""
        self.refill()
        if limit is not None and limit > 0:
            self.limit = float(limit)
            self.capacity = self._capacity()
            self.level = min(self.level, self.capacity)
        if remaining is not None:
            self.level = min(self.level, float(remaining))
            if reset_s is not None and reset_s > 0 and self.level < self.capacity:
                self.boost_rate = (self.capacity - self.level) / reset_s
