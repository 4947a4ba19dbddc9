"""Unit tests of the gateway's parts: buckets, header correction, the fair queue, the breaker,
back-off, the cache, counters and budgets (no network)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from pathlib import Path

import pytest

from npcbridge.config import load_config
from npcbridge.gateway.breaker import BreakerState, CircuitBreaker
from npcbridge.gateway.bucket import Bucket
from npcbridge.gateway.budget import Budgets, MemoryCounters, to_nano, today
from npcbridge.gateway.cache import CachedReply, ResponseCache, cache_key
from npcbridge.gateway.ratelimit import ModelLimiter, RateLimitWait
from npcbridge.gateway.retry import Verdict, backoff_s, classify, counts_against_health
from npcbridge.gateway.settings import (
    BudgetSettings,
    CacheSettings,
    ModelLimits,
    RateLimitSettings,
    RetrySettings,
)
from npcbridge.protocol.errors import ProtocolError
from npcbridge.providers.base import ProviderRequest, UpstreamError


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ buckets


def test_bucket_refills_at_limit_per_period() -> None:
    clock = Clock()
    bucket = Bucket(60, 60.0, "requests", clock=clock)
    assert bucket.wait_s(1) == 0
    bucket.take(60)
    assert bucket.wait_s(1) == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.wait_s(1) == pytest.approx(0.5)
    clock.now += 120
    assert bucket.wait_s(1) == 0
    assert bucket.level == 60  # never above capacity


def test_burst_caps_the_bucket() -> None:
    clock = Clock()
    bucket = Bucket(600, 60.0, "requests", burst=1, clock=clock)
    bucket.take(1)
    assert bucket.wait_s(1) == pytest.approx(0.1)
    clock.now += 10
    assert bucket.wait_s(1) == 0 and bucket.level == 1


def test_per_second_bucket_takes_only_what_is_there() -> None:
    # the server's message limits: rate per second, a whole message always possible
    clock = Clock()
    fast = Bucket.per_second(20.0, clock)
    assert [fast.try_take() for _ in range(20)] == [0.0] * 20
    assert fast.try_take() == pytest.approx(0.05)
    assert fast.try_take() == pytest.approx(0.05)  # a refused take holds nothing
    slow = Bucket.per_second(0.5, clock)
    assert slow.capacity == 1 and slow.try_take() == 0.0
    assert slow.try_take() == pytest.approx(2.0)
    clock.now += 2.0
    assert slow.try_take() == 0.0


def test_header_correction_shrinks_and_refills_by_reset() -> None:
    clock = Clock()
    bucket = Bucket(250_000, 60.0, "tokens", clock=clock)
    bucket.correct(limit=6000, remaining=0, reset_s=2.0)
    assert bucket.capacity == 6000
    # full again 2 s later: 3000 tokens after 1 s
    assert bucket.wait_s(3000) == pytest.approx(1.0)
    clock.now += 2.0
    assert bucket.wait_s(6000) == pytest.approx(0.0)
    # once full, the normal rate applies again
    bucket.take(6000)
    assert bucket.rate == pytest.approx(100.0)


def test_header_correction_never_raises_the_level() -> None:
    bucket = Bucket(100, 60.0, "tokens", clock=Clock())
    bucket.take(90)
    bucket.correct(limit=None, remaining=80, reset_s=None)
    assert bucket.level == pytest.approx(10)


def test_limiter_observes_groq_headers() -> None:
    limiter = ModelLimiter("openai:m", ModelLimits(), Clock())
    assert limiter.buckets == {}
    limiter.observe(
        {
            "x-ratelimit-limit-requests": "14400",
            "x-ratelimit-remaining-requests": "14370",
            "x-ratelimit-reset-requests": "2m59.56s",
            "x-ratelimit-limit-tokens": "18000",
            "x-ratelimit-remaining-tokens": "17997",
            "x-ratelimit-reset-tokens": "7.66s",
        }
    )
    assert limiter.buckets["rpd"].limit == 14400 and limiter.buckets["rpd"].period_s == 86400
    assert limiter.buckets["rpd"].level == 14370
    assert limiter.buckets["tpm"].limit == 18000 and limiter.buckets["tpm"].period_s == 60
    assert limiter.buckets["tpm"].level == 17997


def test_limits_merge_per_model() -> None:
    settings = RateLimitSettings(rpm=30, tpm=6000, models={"big": ModelLimits(rpm=10)})
    assert settings.limits_for("big").rpm == 10
    assert settings.limits_for("big").tpm == 6000
    assert settings.limits_for("other").rpm == 30
    # a catalog entry's declared limits sit between the defaults and the config's override
    declared = ModelLimits(rpm=5, tpd=100)
    assert settings.limits_for("other", declared).rpm == 5
    assert settings.limits_for("other", declared).tpm == 6000
    assert settings.limits_for("big", declared).rpm == 10
    assert settings.limits_for("big", declared).tpd == 100


# ------------------------------------------------------------------ fair queue


async def test_fair_queue_round_robin_between_clients() -> None:
    limiter = ModelLimiter("openai:m", ModelLimits(rpm=1200, burst=1))  # one per 50 ms
    order: list[str] = []
    deadline = time.monotonic() + 10

    async def one(client: str, tag: str) -> None:
        await limiter.acquire(client, 10, deadline)
        order.append(tag)

    tasks = [asyncio.create_task(one("a", f"a{i}")) for i in range(5)]
    await asyncio.sleep(0.01)
    tasks += [asyncio.create_task(one("b", f"b{i}")) for i in range(2)]
    await asyncio.gather(*tasks)
    assert order == ["a0", "a1", "b0", "a2", "b1", "a3", "a4"]
    assert limiter.queue_length() == 0


async def test_acquire_refuses_a_wait_past_the_deadline() -> None:
    limiter = ModelLimiter("openai:m", ModelLimits(rpm=60, burst=1))
    await limiter.acquire("a", 1, time.monotonic() + 5)
    with pytest.raises(RateLimitWait) as info:
        await limiter.acquire("a", 1, time.monotonic() + 0.2)
    assert info.value.wait_s == pytest.approx(1.0, abs=0.05)
    assert limiter.queue_length() == 0


async def test_cancelled_waiter_leaves_the_queue() -> None:
    limiter = ModelLimiter("openai:m", ModelLimits(rpm=60, burst=1))
    await limiter.acquire("a", 1, time.monotonic() + 5)
    task = asyncio.create_task(limiter.acquire("a", 1, time.monotonic() + 5))
    await asyncio.sleep(0.01)
    assert limiter.queue_length() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.queue_length() == 0


async def test_block_delays_every_request() -> None:
    limiter = ModelLimiter("openai:m", ModelLimits())
    limiter.block(0.15)
    started = time.monotonic()
    waited = await limiter.acquire("a", 1, started + 2)
    assert waited >= 0.14


# ------------------------------------------------------------------ breaker


def test_breaker_closed_open_half_open_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.success()  # resets the count
    for _ in range(3):
        breaker.failure()
    assert breaker.state is BreakerState.OPEN and not breaker.acquire()
    assert breaker.retry_after_s() == pytest.approx(10)
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire()  # the probe
    assert not breaker.acquire()  # only one at a time
    breaker.failure()  # the probe failed: open again
    assert breaker.state is BreakerState.OPEN
    clock.now += 10
    assert breaker.acquire()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.opened_count == 2


def test_breaker_probe_released_without_verdict() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=1, clock=clock)
    breaker.failure()
    clock.now += 1
    assert breaker.acquire()
    breaker.release()  # cancelled: another probe may go
    assert breaker.acquire()


# ------------------------------------------------------------------ retry policy


def test_classify() -> None:
    assert classify(UpstreamError("x", status=429)) is Verdict.RETRY
    assert classify(UpstreamError("x", status=503)) is Verdict.RETRY
    assert classify(UpstreamError("x", status=524)) is Verdict.RETRY
    assert classify(UpstreamError("x")) is Verdict.RETRY  # connection error
    assert classify(UpstreamError("x", timeout=True)) is Verdict.RETRY
    assert classify(UpstreamError("x", status=404)) is Verdict.FALLBACK
    assert classify(UpstreamError("x", status=400)) is Verdict.FAIL
    assert classify(UpstreamError("x", status=401)) is Verdict.FAIL
    assert counts_against_health(UpstreamError("x", status=503))
    assert not counts_against_health(UpstreamError("x", status=429))
    assert not counts_against_health(UpstreamError("x", status=400))


def test_full_jitter_backoff_bounds() -> None:
    settings = RetrySettings(base_delay_ms=100, max_delay_ms=1000)
    rng = random.Random(7)
    for retry, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        samples = [backoff_s(settings, retry, rng) for _ in range(200)]
        assert 0 <= min(samples) and max(samples) <= cap
        assert max(samples) > cap * 0.8  # spread over the whole range


# ------------------------------------------------------------------ cache


def _request(text: str, temperature: float | None = 0) -> ProviderRequest:
    return ProviderRequest(
        model="m", messages=[{"role": "user", "content": text}], temperature=temperature
    )


def test_cache_lru_ttl_and_size_bound() -> None:
    clock = Clock()
    cache = ResponseCache(CacheSettings(max_entries=2, ttl_s=10, max_reply_chars=20), clock)
    keys = [cache_key(_request(t)) for t in ("a", "b", "c")]
    assert len(set(keys)) == 3 and cache_key(_request("a")) == keys[0]
    assert cache_key(_request("a", 0.5)) != keys[0]
    cache.put(keys[0], CachedReply(("A",), "stop"))
    cache.put(keys[1], CachedReply(("B",), "stop"))
    assert cache.get(keys[0]) is not None  # a is now the most recent
    cache.put(keys[2], CachedReply(("C",), "stop"))  # evicts b
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) is not None and cache.get(keys[2]) is not None
    clock.now += 10
    assert cache.get(keys[0]) is None  # expired
    assert not cache.put(keys[0], CachedReply(("x" * 21,), "stop"))  # too long to keep
    assert cache.hits == 3 and cache.misses == 2


# ------------------------------------------------------------------ counters and budgets


async def test_memory_counters_expire() -> None:
    clock = Clock()
    counters = MemoryCounters(clock)
    assert await counters.add_counter("k", 5, ttl_s=10) == 5
    assert await counters.add_counter("k", 2, ttl_s=10) == 7
    clock.now += 10
    assert await counters.get_counter("k") == 0


async def test_budgets_reserve_and_settle() -> None:
    counters = MemoryCounters()
    budgets = Budgets(
        BudgetSettings(per_player_usd_per_day=0.01, per_session_usd=None), lambda: counters
    )
    scopes = budgets.scopes("p1", "s1")
    assert [s.name for s in scopes] == ["player", "session", "global"]
    held = await budgets.reserve(scopes, 0.009, "r1")
    assert await budgets.remaining_fraction(scopes) == pytest.approx(0.1)  # held until settled
    held.cost_usd = 0.006
    await budgets.settle(held)
    await budgets.settle(held)  # once only
    assert await budgets.remaining_fraction(scopes) == pytest.approx(0.4)
    with pytest.raises(ProtocolError) as info:
        await budgets.reserve(scopes, 0.005, "r2")
    assert info.value.code == "budget_exceeded" and info.value.request_id == "r2"
    # the global day total is counted without a limit; other unlimited scopes are not
    assert await counters.get_counter(scopes[2].key) == to_nano(0.006)
    assert await counters.get_counter(scopes[1].key) == 0
    other = budgets.scopes("p2", "s1")
    await budgets.reserve(other, 0.009, "r3")  # another player's budget is untouched


async def test_concurrent_reservations_never_pass_the_limit() -> None:
    counters = MemoryCounters()
    budgets = Budgets(BudgetSettings(per_player_usd_per_day=1.0), lambda: counters)
    scopes = budgets.scopes("p1", "s1")

    async def turn() -> bool:
        try:
            held = await budgets.reserve(scopes, 0.3, "r")
        except ProtocolError:
            return False
        await asyncio.sleep(0.01)  # the turns overlap
        held.cost_usd = 0.25
        await budgets.settle(held)
        return True

    admitted = await asyncio.gather(*(turn() for _ in range(32)))
    assert sum(admitted) == 3  # 3 x 0.3 held at once fit in $1, a 4th does not
    assert await budgets.spent_usd(scopes[0]) == pytest.approx(0.75)


# ------------------------------------------------------------------ documentation


def test_docs_example_config_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "gateway.md").read_text()
    block = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert block is not None
    path = tmp_path / "npcbridge.toml"
    path.write_text(block.group(1))
    config = load_config(path, env={})
    assert config.ratelimit.limits_for("llama-3.3-70b-versatile").tpm == 12000
    assert config.ratelimit.limits_for("llama-3.1-8b-instant").tpm == 6000
    assert config.budget.per_player_usd_per_day == 0.05
    assert config.gateway.budget_ms("realtime") == 1500
    crier = config.npcs["town_crier"]
    assert crier.cacheable is True and crier.fallbacks == ["openai/gpt-oss-20b"]


async def test_acquire_counts_the_queue_ahead_and_refuses_early() -> None:
    limiter = ModelLimiter("openai:m", ModelLimits(rpm=60, burst=1))  # one a second
    await limiter.acquire("a", 1, time.monotonic() + 5)
    first = asyncio.create_task(limiter.acquire("a", 1, time.monotonic() + 5))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(RateLimitWait) as info:
        await limiter.acquire("b", 1, started + 1.5)  # next free slot is ~2 s away
    assert time.monotonic() - started < 0.1  # refused at once, not at the deadline
    assert info.value.wait_s == pytest.approx(2.0, abs=0.1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


@pytest.mark.parametrize("npc_limit", [None, 2.0])
@pytest.mark.parametrize(
    "limits",
    [{}, {"per_player_usd_per_day": 1.0}, {"per_session_usd": 0.5}, {"global_usd_per_day": 9.0}],
)
def test_limits_any_agrees_with_the_scopes(
    limits: dict[str, float], npc_limit: float | None
) -> None:
    budgets = Budgets(BudgetSettings(**limits), MemoryCounters)
    scopes = budgets.scopes("p1", "s-1")
    if npc_limit is not None:
        scopes.append(budgets.npc_scope("smith", npc_limit))
    assert budgets.limits_any(npc_limit) == any(scope.limit_usd is not None for scope in scopes)


def test_today_is_the_utc_date_also_when_remembered() -> None:
    assert today() == today(time.time()) == today()
    assert today(0.0) == "1970-01-01" and today(86_399.0) == "1970-01-01"
    assert today(86_400.0) == "1970-01-02"
