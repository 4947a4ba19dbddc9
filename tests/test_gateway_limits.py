"""The gateway's rate limits end to end: x-ratelimit-* headers that shrink the budget, waits
that go to the fallback model, the fair queue, a cancel while queued, and limits counted in a
store shared by two servers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from gateway_helpers import (
    ALONE,
    LARGE,
    PINNED,
    SMALL,
    bridge_with,
    models_called,
)

from npcbridge.client import NpcBridgeError
from npcbridge.testing.fake_upstream import FakeUpstream

# ------------------------------------------------------------------ rate limits


SHRUNK = {
    "x-ratelimit-limit-requests": "14400",
    "x-ratelimit-remaining-requests": "14000",
    "x-ratelimit-reset-requests": "1m0s",
    "x-ratelimit-limit-tokens": "600",
    "x-ratelimit-remaining-tokens": "0",
    "x-ratelimit-reset-tokens": "2s",
}


async def test_rate_limit_headers_shrink_the_budget(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake = fake_upstream
    fake.rate_limit_headers = dict(SHRUNK)
    async with await bridge_with(fake, tmp_path) as b:
        async with await b.client() as client:
            await client.define_npc("smith", {**ALONE, "latency_budget_ms": 200})
            await client.define_npc("patient", {**ALONE, "latency_budget_ms": 5000})
            first = await client.say("smith", "p1", "hello", max_tokens=50)
            await first.text()
            # the headers said: 600 tokens per minute, none left, full again in 2 s
            limiter = b.app.gateway.limiter.for_model("openai", SMALL)
            assert limiter.buckets["tpm"].limit == 600
            refused = await client.say("smith", "p2", "hello", max_tokens=50)
            with pytest.raises(NpcBridgeError) as info:
                await refused.text()
            assert info.value.code == "rate_limited"
            assert info.value.retry_after_ms is not None and info.value.retry_after_ms > 200
            assert len(fake.requests) == 1  # refused without calling the upstream
            # a turn with a longer latency budget waits in the queue instead
            fake.rate_limit_headers = {}
            started = time.perf_counter()
            waited = await client.say("patient", "p3", "hello", max_tokens=50)
            await waited.text()
            elapsed = time.perf_counter() - started
        assert len(fake.requests) == 2
        assert waited.end["timing"]["queue_ms"] >= 200
        assert elapsed >= 0.2


async def test_rate_limit_wait_goes_to_the_fallback_model(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, ratelimit__models={SMALL: {"rpm": 1}}, ratelimit__burst=None
    ) as b:
        async with await b.client() as client:
            await client.define_npc("smith", {**PINNED, "latency_budget_ms": 300})
            first = await client.say("smith", "p1", "one")
            await first.text()
            second = await client.say("smith", "p2", "two")
            await second.text()
        assert first.end["model"] == SMALL
        assert second.end["model"] == LARGE  # the small model's minute allowance is spent
        assert models_called(fake_upstream) == [SMALL, LARGE]


async def test_fair_queue_serves_players_round_robin(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # one request every 200 ms, no burst
    async with await bridge_with(
        fake_upstream, tmp_path, ratelimit__rpm=300, ratelimit__burst=1
    ) as b:
        limiter = b.app.gateway.limiter
        async with await b.client() as chatty, await b.client() as quiet:
            await chatty.define_npc("smith", ALONE)
            await quiet.define_npc("smith", ALONE)
            spam = [await chatty.say("smith", "chatty", f"[[reply:a{i}]]") for i in range(6)]
            # a0 went at once; a1..a5 wait in the chatty player's queue
            for _ in range(200):
                if limiter.queue_length() == 5:
                    break
                await asyncio.sleep(0.005)
            assert limiter.queue_length() == 5
            calm = [await quiet.say("smith", "quiet", f"[[reply:b{i}]]") for i in range(2)]
            await asyncio.gather(*(r.text() for r in spam + calm))
        order = [r.last_user_text[8:10] for r in fake_upstream.requests]
        assert sorted(order) == ["a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1"]
        # FIFO would serve b0, b1 last (positions 6 and 7); round-robin alternates the queues,
        # so the quiet player is served by the time the chatty one had two more turns each
        b0, b1 = order.index("b0"), order.index("b1")
        assert b0 <= 3 and b1 - b0 == 2, order
        assert order[-1] == "a5"
        spread = fake_upstream.requests[-1].monotonic - fake_upstream.requests[0].monotonic
        assert spread >= 1.0  # 7 grants spaced at 5 per second (the first may connect slowly)
        queued = [r.end["timing"]["queue_ms"] for r in spam + calm]
        assert max(queued) >= 1000


async def test_cancel_while_queued_for_rate_limit(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, ratelimit__rpm=60, ratelimit__burst=1
    ) as b:
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            await (await client.say("smith", "p1", "one")).text()
            queued = await client.say("smith", "p1", "two")  # must wait ~1 s for capacity
            await asyncio.sleep(0.1)
            assert b.app.gateway.limiter.queue_length() == 1
            await queued.cancel()
            await queued.text()
            assert queued.end["finish"] == "cancelled"
            assert b.app.gateway.limiter.queue_length() == 0
        assert len(fake_upstream.requests) == 1


async def test_shared_store_counts_rate_limits_across_processes(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # two servers on one store, marked shared as a Redis store is: 2 requests a minute in all
    limits = {"ratelimit__rpm": 2}
    async with (
        await bridge_with(fake_upstream, tmp_path, **limits) as a,
        await bridge_with(fake_upstream, tmp_path, **limits) as b,
    ):
        for bridge in (a, b):
            assert bridge.app.store is not None
            bridge.app.store.shared = True  # type: ignore[misc]
        if time.time() % 60 > 58:  # keep the three requests in one fixed minute window
            await asyncio.sleep(2.5)
        async with await a.client() as one, await b.client() as two:
            await one.define_npc("smith", {**ALONE, "latency_budget_ms": 100})
            await two.define_npc("smith", {**ALONE, "latency_budget_ms": 100})
            await (await one.say("smith", "p1", "one")).text()
            await (await two.say("smith", "p2", "two")).text()
            with pytest.raises(NpcBridgeError) as info:
                await (await two.say("smith", "p3", "three")).text()
        assert info.value.code == "rate_limited"
        assert info.value.retry_after_ms is not None and info.value.retry_after_ms > 100
        assert len(fake_upstream.requests) == 2
