"""The gateway's retries end to end (real WebSockets, the real openai SDK, the fake upstream):
429 storms with retry-after, 503s, fallbacks, cut streams, first-token stalls, the total retry
time, a cancel during the back-off, and the circuit breaker."""

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
    SMITH,
    bridge_with,
    models_called,
    price,
)

from npcbridge.client import NpcBridgeError
from npcbridge.gateway.breaker import BreakerState
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply

# ------------------------------------------------------------------ retries


async def test_429_storm_waits_for_retry_after_then_succeeds(gw: Bridge) -> None:
    fake = gw.fake
    fake.script(Reply(status=429, retry_after=0.3), Reply(status=429, retry_after=0.3))
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        reply = await client.say("smith", "p1", "[[reply:Aye, lad.]]")
        assert await reply.text() == "Aye, lad."
    calls = fake.requests
    assert len(calls) == 3  # two 429s, then the reply; no fallback needed
    assert [r.outcome for r in calls] == ["error", "error", "completed"]
    # each retry waited at least the retry-after the upstream asked for
    assert calls[1].monotonic - calls[0].monotonic >= 0.3
    assert calls[2].monotonic - calls[1].monotonic >= 0.3
    # the wait shows in queue_ms
    assert reply.end["timing"]["queue_ms"] >= 600
    assert reply.end["finish"] == "stop"


async def test_429_storm_exhausts_attempts_then_rate_limited(gw: Bridge) -> None:
    fake = gw.fake
    fake.script(*[Reply(status=429, retry_after=0.05)] * 5)
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        reply = await client.say("smith", "p1", "hello")
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
    assert info.value.code == "rate_limited"
    assert info.value.retryable is True
    assert info.value.retry_after_ms == 50
    assert len(fake.requests) == 3  # retry.max_attempts
    assert fake.pending_scripts == 2
    assert reply.end is None


async def test_503s_are_retried_on_the_same_model(gw: Bridge) -> None:
    fake = gw.fake
    fake.script(Reply(status=503), Reply(status=503))
    async with await gw.client() as client:
        await client.define_npc("smith", PINNED)
        reply = await client.say("smith", "p1", "[[words:4]]")
        assert len((await reply.text()).split()) == 4
    assert models_called(fake) == [SMALL, SMALL, SMALL]
    assert reply.end["model"] == SMALL


async def test_503_storm_falls_back_to_the_second_model(gw: Bridge) -> None:
    fake = gw.fake
    fake.script(*[Reply(status=503)] * 3, model=SMALL)
    async with await gw.client() as client:
        await client.define_npc("smith", PINNED)
        reply = await client.say("smith", "p1", "[[words:6]]")
        await reply.text()
    assert models_called(fake) == [SMALL, SMALL, SMALL, LARGE]
    assert reply.end["model"] == LARGE
    usage = fake.requests[-1].usage
    assert usage is not None
    # the cost is the fallback model's price for the usage it reported
    assert reply.end["cost_usd"] == pytest.approx(price(LARGE, usage))
    assert reply.end["usage"] == {
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
    }


async def test_400_is_not_retried(gw: Bridge) -> None:
    gw.fake.script(Reply(status=400))
    async with await gw.client() as client:
        await client.define_npc("smith", PINNED)
        reply = await client.say("smith", "p1", "hi")
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
    assert info.value.code == "upstream_error"
    assert len(gw.fake.requests) == 1


async def test_a_groq_in_stream_400_is_final(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("smith", PINNED)
        reply = await client.say("smith", "p1", "[[reply:]] [[groq_error:400:tool call failed]]")
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
    assert info.value.code == "upstream_error" and info.value.retryable is False
    assert models_called(gw.fake) == [SMALL]  # neither retried nor sent to the fallback
    assert "tool call failed" not in str(info.value)


async def test_a_groq_in_stream_error_without_status_is_retried(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        reply = await client.say("smith", "p1", "[[reply:]] [[groq_error:overloaded]]")
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
    assert info.value.code == "upstream_error" and info.value.retryable is True
    assert models_called(gw.fake) == [SMALL] * 3  # retry.max_attempts


async def test_stream_cut_before_first_delta_is_retried(gw: Bridge) -> None:
    gw.fake.script(Reply(text="Hello there friend.", cut_after_chunks=0))
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        reply = await client.say("smith", "p1", "[[reply:Aye, lad.]]")
        assert await reply.text() == "Aye, lad."
    assert [r.outcome for r in gw.fake.requests] == ["cut", "completed"]


async def test_stream_cut_after_deltas_is_not_retried(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("smith", PINNED)
        reply = await client.say("smith", "p1", "[[words:20]] [[cut:3]]")
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
    assert info.value.code == "upstream_error"
    assert reply.end is not None and reply.end["finish"] == "error"
    assert len(reply.end["text"].split()) == 3
    assert len(gw.fake.requests) == 1  # never retried once deltas reached the client


async def test_first_token_stall_times_out_and_is_retried(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(fake_upstream, tmp_path, upstream__first_token_timeout_s=0.3) as b:
        fake_upstream.script(Reply(stall_s=3.0), Reply(text="Here now."))
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            started = time.perf_counter()
            reply = await client.say("smith", "p1", "hi")
            assert await reply.text() == "Here now."
            assert time.perf_counter() - started >= 0.3
        assert len(fake_upstream.requests) == 2
        await fake_upstream.wait_disconnect(timeout=3)  # the stalled request was abandoned


async def test_first_token_stall_everywhere_is_upstream_timeout(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, upstream__first_token_timeout_s=0.2, retry__max_attempts=2
    ) as b:
        fake_upstream.script(*[Reply(stall_s=3.0)] * 2)
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            reply = await client.say("smith", "p1", "hi")
            with pytest.raises(NpcBridgeError) as info:
                await reply.text()
        assert info.value.code == "upstream_timeout"
        assert len(fake_upstream.requests) == 2


async def test_retries_are_bounded_in_total_time(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, retry__max_attempts=10, retry__max_total_ms=300
    ) as b:
        fake_upstream.script(*[Reply(status=503, retry_after=0.2)] * 10)
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            started = time.perf_counter()
            reply = await client.say("smith", "p1", "hi")
            with pytest.raises(NpcBridgeError) as info:
                await reply.text()
            elapsed = time.perf_counter() - started
        assert info.value.code == "upstream_error" and info.value.retryable
        # attempt, wait 0.2 s, attempt; a third would start past the 0.3 s total
        assert len(fake_upstream.requests) == 2
        assert fake_upstream.requests[1].monotonic - fake_upstream.requests[0].monotonic >= 0.2
        assert elapsed < 1.0


async def test_cancel_during_retry_backoff(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await bridge_with(fake_upstream, tmp_path) as b:
        fake_upstream.script(Reply(status=503, retry_after=1.0))
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            reply = await client.say("smith", "p1", "hi")
            await fake_upstream.wait_requests(1)
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            await reply.cancel()
            await reply.text()
            assert time.perf_counter() - started < 0.5  # did not sit out the back-off
            assert reply.end["finish"] == "cancelled"
        assert len(fake_upstream.requests) == 1


# ------------------------------------------------------------------ breaker


async def test_breaker_opens_skips_the_model_and_closes_after_a_probe(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(
        fake_upstream,
        tmp_path,
        retry__max_attempts=2,
        breaker__failure_threshold=2,
        breaker__cooldown_s=0.4,
    ) as b:
        fake = fake_upstream
        breaker = b.app.gateway.breakers.get(SMALL)
        fake.script(Reply(status=503), Reply(status=503), model=SMALL)
        async with await b.client() as client:
            await client.define_npc("smith", PINNED)
            # 1: two failures open the breaker, the turn falls back
            first = await client.say("smith", "p1", "one")
            await first.text()
            assert first.end["model"] == LARGE
            assert models_called(fake) == [SMALL, SMALL, LARGE]
            assert breaker.state is BreakerState.OPEN
            gauge = f'npcbridge_breaker_open{{model="{SMALL}"}}'
            assert f"{gauge} 1.0" in b.app.gateway.metrics.render().decode()
            # 2: while open, the model is not called at all
            second = await client.say("smith", "p1", "two")
            await second.text()
            assert models_called(fake)[3:] == [LARGE]
            # without a pinned model, selection picks a healthy model of the same tier
            await client.define_npc("free", SMITH)
            free = await client.say("free", "p1", "three")
            await free.text()
            assert free.end["model"] == "openai/gpt-oss-20b"
            # 3: after the cool-down one probe goes through, succeeds, and closes it
            await asyncio.sleep(0.45)
            assert breaker.state is BreakerState.HALF_OPEN
            third = await client.say("smith", "p1", "four")
            await third.text()
            assert third.end["model"] == SMALL
            assert breaker.state is BreakerState.CLOSED
            assert f"{gauge} 0.0" in b.app.gateway.metrics.render().decode()
        assert models_called(fake)[-1] == SMALL
        assert breaker.opened_count == 1


async def test_all_breakers_open_fails_fast(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, retry__max_attempts=1, breaker__failure_threshold=1
    ) as b:
        fake_upstream.script(Reply(status=500))
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            with pytest.raises(NpcBridgeError):
                await (await client.say("smith", "p1", "one")).text()
            reply = await client.say("smith", "p1", "two")
            with pytest.raises(NpcBridgeError) as info:
                await reply.text()
        assert info.value.code == "upstream_error"
        assert info.value.retryable is True
        assert info.value.retry_after_ms is not None and info.value.retry_after_ms > 0
        assert len(fake_upstream.requests) == 1  # the second turn never reached the upstream
