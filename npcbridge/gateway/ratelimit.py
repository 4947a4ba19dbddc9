"""Client-side rate limiting per upstream key, with a fair queue.

Groq limits an organisation (one API key) per model, on whichever is hit first of requests per
minute and per day (RPM, RPD) and tokens per minute and per day (TPM, TPD). Each (provider,
model) pair gets one :class:`ModelLimiter` holding a token bucket per configured limit:

* a bucket holds at most ``burst`` (default: the whole allowance) and refills at
  ``limit / period``; a request takes 1 from the request buckets and its estimated tokens
  (prompt + expected output) from the token buckets; after the reply the estimate is settled
  against the real usage;
* every upstream response corrects the buckets from Groq's headers
  (``x-ratelimit-limit-requests`` = RPD, ``x-ratelimit-limit-tokens`` = TPM, ``-remaining-*``,
  ``-reset-*``): the level drops to what the upstream says remains and refills to full by the
  reset time; a 429's ``retry-after`` blocks the model until then;
* requests that cannot go at once wait in a **fair queue**: one FIFO per client (the player, or
  the NPC for player-less work) served round-robin, so one chatty player cannot starve others;
* a request whose wait would pass its deadline (the turn's latency budget) is refused with
  :class:`RateLimitWait`, which carries the expected wait; the gateway then tries a fallback
  model or answers ``rate_limited`` with ``retry_after_ms``.

When the store is shared between server processes (the store's ``shared``), the configured limits
are also counted in fixed windows through the store's atomic counters, so several processes
behind one key stay under the limit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..providers.openai_compat import parse_duration_s
from .settings import ModelLimits, RateLimitSettings

MINUTE = 60.0
DAY = 86400.0

#: (bucket name, config field, period, unit) for every limit Groq has
LIMIT_KINDS: tuple[tuple[str, str, float, str], ...] = (
    ("rpm", "rpm", MINUTE, "requests"),
    ("rpd", "rpd", DAY, "requests"),
    ("tpm", "tpm", MINUTE, "tokens"),
    ("tpd", "tpd", DAY, "tokens"),
)

#: which bucket each family of Groq headers describes
HEADER_BUCKETS = {"requests": "rpd", "tokens": "tpm"}


class RateLimitWait(Exception):
    """The request would wait longer than its deadline allows; ``wait_s`` is the expected wait."""

    def __init__(self, wait_s: float, model: str = "") -> None:
        super().__init__(f"rate limited for {wait_s:.2f}s on {model or 'the upstream'}")
        self.wait_s = wait_s
        self.model = model


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


@dataclass
class _Waiter:
    amounts: dict[str, float]
    future: asyncio.Future[None]
    enqueued: float = field(default_factory=time.monotonic)


class ModelLimiter:
    """The buckets and the fair queue of one (provider, model)."""

    def __init__(
        self,
        name: str,
        limits: ModelLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.clock = clock
        self.burst = limits.burst
        self.buckets: dict[str, Bucket] = {}
        for bucket, attr, period, unit in LIMIT_KINDS:
            value = getattr(limits, attr)
            if value is not None:
                burst = limits.burst if bucket == "rpm" else None
                self.buckets[bucket] = Bucket(value, period, unit, burst, clock)
        self.blocked_until = 0.0
        self.queues: OrderedDict[str, deque[_Waiter]] = OrderedDict()
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ accounting

    def amounts(self, tokens: float) -> dict[str, float]:
        """What one request of ``tokens`` takes from each bucket."""
        return {
            name: 1.0 if bucket.unit == "requests" else float(tokens)
            for name, bucket in self.buckets.items()
        }

    def headroom(self, bucket: str) -> float:
        """The share of ``bucket`` (``rpm``, ``tpm``...) available now, 0.0 while the model is
        blocked by a ``retry-after``."""
        now = self.clock()
        if self.blocked_until > now:
            return 0.0
        found = self.buckets[bucket]
        found.refill(now)
        return max(0.0, min(1.0, found.level / found.capacity))

    def wait_s(self, amounts: Mapping[str, float], now: float | None = None) -> float:
        """Seconds until a request taking ``amounts`` could go."""
        now = self.clock() if now is None else now
        wait = max(0.0, self.blocked_until - now)
        for name, amount in amounts.items():
            bucket = self.buckets.get(name)
            if bucket is not None:
                wait = max(wait, bucket.wait_s(amount, now))
        return wait

    def _take(self, amounts: Mapping[str, float]) -> None:
        now = self.clock()
        for name, amount in amounts.items():
            bucket = self.buckets.get(name)
            if bucket is not None:
                bucket.take(amount, now)

    def give_back(self, amounts: Mapping[str, float]) -> None:
        """Undo a grant (the request was never sent)."""
        for name, amount in amounts.items():
            bucket = self.buckets.get(name)
            if bucket is not None:
                bucket.give_back(amount)
        self._wake.set()

    def settle(self, estimated_tokens: float, actual_tokens: float) -> None:
        """Correct the token buckets once the real usage is known."""
        diff = estimated_tokens - actual_tokens
        for bucket in self.buckets.values():
            if bucket.unit == "tokens":
                if diff >= 0:
                    bucket.give_back(diff)
                else:
                    bucket.take(-diff)
        self._wake.set()

    def block(self, seconds: float) -> None:
        """Send nothing to this model for ``seconds`` (a 429's ``retry-after``)."""
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the buckets from ``x-ratelimit-*`` headers (creating them when unknown)."""
        for unit, bucket_name in HEADER_BUCKETS.items():
            limit = _number(headers.get(f"x-ratelimit-limit-{unit}"))
            remaining = _number(headers.get(f"x-ratelimit-remaining-{unit}"))
            reset_s = parse_duration_s(headers.get(f"x-ratelimit-reset-{unit}"))
            if limit is None and remaining is None:
                continue
            bucket = self.buckets.get(bucket_name)
            if bucket is None:
                if limit is None:
                    continue
                period = MINUTE if bucket_name.endswith("m") else DAY
                bucket = self.buckets[bucket_name] = Bucket(limit, period, unit, None, self.clock)
            bucket.correct(limit, remaining, reset_s)
        self._wake.set()

    # ------------------------------------------------------------------ the fair queue

    def expected_wait_s(self, amounts: Mapping[str, float]) -> float:
        """Seconds until a request taking ``amounts`` would be granted behind the requests
        already queued (assuming they take as much as it does)."""
        now = self.clock()
        ahead = self.queue_length()
        wait = self.wait_s(amounts, now)
        if ahead == 0:
            return wait
        for name, amount in amounts.items():
            bucket = self.buckets.get(name)
            if bucket is None or bucket.rate <= 0:
                continue
            need = amount * (ahead + 1)
            if bucket.level < need:
                wait = max(wait, (need - bucket.level) / bucket.rate)
        return wait

    def queue_length(self) -> int:
        """Requests waiting for capacity."""
        return sum(len(q) for q in self.queues.values())

    async def acquire(self, client: str, tokens: float, deadline: float) -> float:
        """Wait for capacity for one request of ``tokens``; return the seconds waited.

        ``deadline`` is a :func:`time.monotonic` instant. Raises :class:`RateLimitWait` when the
        wait would pass it (at once when that is already clear, else when the deadline comes).
        """
        amounts = self.amounts(tokens)
        start = self.clock()
        wait = self.wait_s(amounts, start)
        if not self.queues and wait == 0.0:
            self._take(amounts)
            return 0.0
        expected = self.expected_wait_s(amounts)
        if start + expected > deadline:
            raise RateLimitWait(expected, self.name)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(amounts, loop.create_future())
        self.queues.setdefault(client, deque()).append(waiter)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._serve(), name=f"ratelimit:{self.name}")
        self._wake.set()
        try:
            done, _ = await asyncio.wait({waiter.future}, timeout=max(0.0, deadline - start))
        except asyncio.CancelledError:
            self._withdraw(client, waiter)
            raise
        if not done:
            self._withdraw(client, waiter)
            raise RateLimitWait(self.expected_wait_s(amounts), self.name)
        return self.clock() - start

    def _withdraw(self, client: str, waiter: _Waiter) -> None:
        queue = self.queues.get(client)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.queues[client]
        if waiter.future.done() and not waiter.future.cancelled():
            self.give_back(waiter.amounts)  # granted, but the caller is gone
        else:
            waiter.future.cancel()

    async def _serve(self) -> None:
        """Grant waiting requests one at a time, round-robin over clients."""
        while self.queues:
            client, queue = next(iter(self.queues.items()))
            waiter = queue[0]
            wait = self.wait_s(waiter.amounts)
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            queue.popleft()
            if not queue:
                del self.queues[client]
            else:
                self.queues.move_to_end(client)
            if not waiter.future.done():
                self._take(waiter.amounts)
                waiter.future.set_result(None)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


class SharedWindows:
    """Fixed-window counters in a shared store, for limits several processes must respect."""

    def __init__(self, store: Any, limits: ModelLimits, name: str) -> None:
        self.store = store
        self.limits = limits
        self.name = name

    async def reserve(self, tokens: float, deadline: float) -> float:
        """Count one request in the shared windows, waiting for the next window when one is
        full; return the seconds waited. Raises :class:`RateLimitWait` past ``deadline``."""
        start = time.monotonic()
        while True:
            wait = await self._try(tokens)
            if wait == 0.0:
                return time.monotonic() - start
            if time.monotonic() + wait > deadline:
                raise RateLimitWait(wait, self.name)
            await asyncio.sleep(wait)

    async def _try(self, tokens: float) -> float:
        now = time.time()
        added: list[tuple[str, int]] = []
        for _bucket, attr, period, unit in LIMIT_KINDS:
            limit = getattr(self.limits, attr)
            if limit is None:
                continue
            window = int(now // period)
            key = f"ratelimit:{self.name}:{attr}:{window}"
            amount = 1 if unit == "requests" else max(1, int(tokens))
            total = await self.store.add_counter(key, amount, ttl_s=period * 2)
            added.append((key, amount))
            if total > limit:
                for k, a in added:
                    await self.store.add_counter(k, -a, ttl_s=period * 2)
                return (window + 1) * period - now
        return 0.0


class RateLimiter:
    """All model limiters of one server."""

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.models: dict[str, ModelLimiter] = {}

    def for_model(
        self, provider: str, model_id: str, declared: ModelLimits | None = None
    ) -> ModelLimiter:
        """The limiter of one upstream key and model (``declared``: the limits its catalog
        entry carries)."""
        key = f"{provider}:{model_id}"
        limiter = self.models.get(key)
        if limiter is None:
            limiter = self.models[key] = ModelLimiter(
                key, self.settings.limits_for(model_id, declared), self.clock
            )
        return limiter

    def headroom(self) -> Iterator[tuple[str, str, float]]:
        """``(model id, bucket, share available)`` of every bucket of every model."""
        for key, limiter in list(self.models.items()):
            model_id = key.partition(":")[2]
            for bucket in list(limiter.buckets):
                yield model_id, bucket, limiter.headroom(bucket)

    def queue_length(self) -> int:
        """Requests waiting over all models."""
        return sum(m.queue_length() for m in self.models.values())
