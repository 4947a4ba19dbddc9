"""The gateway end to end: real WebSockets, the real openai SDK, the fake upstream injecting
429 storms, 503s, cut streams, stalls and shrinking rate-limit headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from npcbridge.client import NpcBridgeError
from npcbridge.gateway.breaker import BreakerState
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply
from npcbridge.testing.redis_server import redis_session_url, redis_url  # noqa: F401

SMALL = "llama-3.1-8b-instant"
LARGE = "llama-3.3-70b-versatile"
LARGEST = "openai/gpt-oss-120b"
SMITH = {"name": "Brom", "description": "A blacksmith."}
PINNED = {**SMITH, "model": SMALL, "fallbacks": [LARGE]}
ALONE = {**SMITH, "model": SMALL, "fallbacks": []}

#: fast retries for every test: tiny back-off, short cool-downs
FAST: dict[str, Any] = {
    "retry__base_delay_ms": 5,
    "retry__max_delay_ms": 20,
    "upstream__first_token_timeout_s": 2.0,
}


@pytest.fixture
async def gw(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Bridge]:
    """A bridge with fast retry settings."""
    async with await start_bridge(fake_upstream, tmp_path, **FAST) as b:
        yield b


async def bridge_with(fake: FakeUpstream, tmp_path: Path, **overrides: Any) -> Bridge:
    """A bridge with fast retries plus ``overrides``."""
    return await start_bridge(fake, tmp_path, **{**FAST, **overrides})


def models_called(fake: FakeUpstream) -> list[str | None]:
    """The model of every chat request the fake received, in order."""
    return [r.model for r in fake.requests if r.path.endswith("/chat/completions")]


def price(model: str, usage: dict[str, Any]) -> float:
    """The cost of ``usage`` at the default catalog's prices."""
    prices = {SMALL: (0.05, 0.08), LARGE: (0.59, 0.79), LARGEST: (0.15, 0.60)}
    pin, pout = prices[model]
    return (usage["prompt_tokens"] * pin + usage["completion_tokens"] * pout) / 1e6


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
            assert f"{gauge} 1.0" in b.app.gateway.metrics.render()[2].decode()
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
            assert f"{gauge} 0.0" in b.app.gateway.metrics.render()[2].decode()
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


# ------------------------------------------------------------------ cost and budgets

BIG_USAGE = {"prompt_tokens": 100_000, "completion_tokens": 1000, "total_tokens": 101_000}


async def test_player_budget_refuses_the_next_turn(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, budget__per_player_usd_per_day=0.001
    ) as b:
        fake_upstream.script(Reply(text="A costly answer.", usage=BIG_USAGE))
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            first = await client.say("smith", "rich", "hello")
            await first.text()
            assert first.end["cost_usd"] == pytest.approx(price(SMALL, BIG_USAGE))
            refused = await client.say("smith", "rich", "again")
            with pytest.raises(NpcBridgeError) as info:
                await refused.text()
            assert info.value.code == "budget_exceeded"
            assert info.value.retryable is False
            assert info.value.retry_after_ms is not None  # the UTC day's end
            other = await client.say("smith", "poor", "hello")  # another player's budget
            await other.text()
        assert len(fake_upstream.requests) == 2
        spent = await b.app.gateway.counters().get_counter(
            b.app.gateway.budgets.scopes("rich", "")[0].key
        )
        assert spent / 1e9 == pytest.approx(price(SMALL, BIG_USAGE))


async def test_session_and_global_budgets(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, budget__per_session_usd=0.001, budget__global_usd_per_day=0.008
    ) as b:
        fake_upstream.script(*[Reply(text="Costly.", usage=BIG_USAGE)] * 2)
        async with await b.client() as one:
            await one.define_npc("smith", ALONE)
            await (await one.say("smith", "a", "hello")).text()
            with pytest.raises(NpcBridgeError) as info:
                await (await one.say("smith", "b", "hello")).text()  # same session
            assert info.value.code == "budget_exceeded"
            assert "session" in info.value.message
        async with await b.client() as two:  # a new session: the session budget is fresh
            await two.define_npc("smith", ALONE)
            await (await two.say("smith", "c", "hello")).text()
            with pytest.raises(NpcBridgeError) as info:
                await (await two.say("smith", "d", "hello")).text()
            assert "session" in info.value.message
        async with await b.client() as three:  # the day's global budget is now spent
            await three.define_npc("smith", ALONE)
            with pytest.raises(NpcBridgeError) as info:
                await (await three.say("smith", "e", "hello")).text()
            assert info.value.code == "budget_exceeded"
            assert "global" in info.value.message
        assert len(fake_upstream.requests) == 2


async def test_cost_matches_reported_usage(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("sage", {**SMITH, "name": "Sage"})
        reply = await client.say("sage", "p1", "[[words:9]]", urgency="deep")
        await reply.text()
    usage = gw.fake.last_usage
    assert usage is not None
    assert reply.end["model"] == LARGEST  # not real-time: the largest model
    assert reply.end["cost_usd"] == pytest.approx(price(LARGEST, usage))
    assert reply.end["usage"]["output_tokens"] == usage["completion_tokens"] == 9


# ------------------------------------------------------------------ model selection


async def test_selection_follows_urgency_persona_and_budget(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(fake_upstream, tmp_path, budget__per_player_usd_per_day=0.01) as b:
        async with await b.client() as client:
            await client.define_npc("guard", {"name": "Guard"})
            await client.define_npc("sage", {"name": "Sage", "quality": True})
            got = {}
            for npc, urgency in [("guard", "realtime"), ("sage", "realtime"), ("guard", "deep")]:
                reply = await client.say(npc, "p1", "hi", urgency=urgency)
                await reply.text()
                got[(npc, urgency)] = reply.end["model"]
            assert got == {
                ("guard", "realtime"): SMALL,
                ("sage", "realtime"): LARGE,
                ("guard", "deep"): LARGEST,
            }
            # spend 90% of the player's budget: deep turns step down one tier
            gateway = b.app.gateway
            scope = gateway.budgets.scopes("p1", "")[0]
            await gateway.budgets.charge([scope], 0.009)
            reply = await client.say("guard", "p1", "hi", urgency="deep")
            await reply.text()
            assert reply.end["model"] == LARGE


async def test_a_plugin_can_override_selection(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await bridge_with(
        fake_upstream, tmp_path, plugins=("gateway_override_plugin",)
    ) as b:
        async with await b.client() as client:
            await client.define_npc("guard", {"name": "Guard"})
            reply = await client.say("guard", "p1", "hi", urgency="deep")
            await reply.text()
        assert reply.end["model"] == LARGE


# ------------------------------------------------------------------ cache


async def test_cache_hit_streams_the_reply_without_upstream(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        first = await client.say("smith", "p1", "[[words:7]]", temperature=0)
        await first.text()
        second = await client.say("smith", "p2", "[[words:7]]", temperature=0)
        await second.text()
        warm = await client.say("smith", "p3", "[[words:7]]", temperature=0.7)
        await warm.text()
    assert len(gw.fake.requests) == 2  # the second reply came from the cache
    assert second.end["cached"] is True
    assert second.end["cost_usd"] == 0.0
    assert second.end["text"] == first.end["text"]
    # the cache replays the upstream's deltas (the outbox may coalesce frames on the way)
    deltas = [f["text"] for f in second.frames if f["type"] == "reply.delta"]
    assert deltas and "".join(deltas) == second.end["text"]
    (_, cached), *_ = gw.app.gateway.cache.entries.values()
    # (the provider merges tokens that arrived in one network read into one delta)
    assert cached.deltas and "".join(cached.deltas) == first.end["text"]
    assert "cached" not in first.end and "cached" not in warm.end


async def test_cacheable_persona_barks_hit_the_cache(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("crier", {"name": "Crier", "cacheable": True, "model": SMALL})
        texts = []
        for player in ("a", "b", "c"):
            reply = await client.say("crier", player, "[[reply:Hear ye!]]")
            texts.append(await reply.text())
    assert texts == ["Hear ye!"] * 3
    assert len(gw.fake.requests) == 1
    assert gw.app.gateway.cache.hits == 2


# ------------------------------------------------------------------ metrics


async def _get(bridge: Bridge, path: str) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection(bridge.server.host, bridge.server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = b""
    while b"\r\n\r\n" not in data:
        data += await reader.read(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    while len(body) < length:
        body += await reader.read(65536)
    writer.close()
    return head, body


async def test_metrics_endpoint(gw: Bridge) -> None:
    gw.fake.script(Reply(status=503))
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        await (await client.say("smith", "p1", "[[words:5]]", temperature=0)).text()
        await (await client.say("smith", "p2", "[[words:5]]", temperature=0)).text()
    head, body = await _get(gw, "/metrics")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"text/plain" in head
    text = body.decode()
    assert f'npcbridge_turns_total{{finish="stop",model="{SMALL}"}} 2.0' in text
    assert "npcbridge_cache_hits_total 1.0" in text
    assert f'npcbridge_retries_total{{model="{SMALL}",reason="503"}} 1.0' in text
    assert f'npcbridge_upstream_requests_total{{model="{SMALL}",outcome="503"}} 1.0' in text
    assert f'npcbridge_tokens_total{{direction="output",model="{SMALL}"}} 5.0' in text
    assert "npcbridge_upstream_ttft_seconds_bucket" in text
    assert "npcbridge_upstream_latency_seconds_count" in text
    assert "npcbridge_ratelimit_queue_length 0.0" in text
    assert "npcbridge_ratelimit_wait_seconds_count" in text
    assert "npcbridge_cost_usd_total" in text


async def test_metrics_count_errors_by_code(gw: Bridge) -> None:
    gw.fake.script(Reply(status=400))
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        with pytest.raises(NpcBridgeError):
            await (await client.say("smith", "p1", "hi")).text()
    _, body = await _get(gw, "/metrics")
    assert 'npcbridge_errors_total{code="upstream_error"} 1.0' in body.decode()


# ------------------------------------------------------------------ the store


async def test_budget_totals_survive_a_restart(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    fake_upstream.script(Reply(text="Costly.", usage=BIG_USAGE))
    async with await bridge_with(
        fake_upstream, tmp_path, budget__per_player_usd_per_day=0.001
    ) as first:
        async with await first.client() as client:
            await client.define_npc("smith", ALONE)
            await (await client.say("smith", "rich", "hello")).text()
    async with await bridge_with(
        fake_upstream, tmp_path, budget__per_player_usd_per_day=0.001
    ) as second:
        assert second.app.gateway.counters() is second.app.store  # persisted, not in memory
        async with await second.client() as client:
            await client.define_npc("smith", ALONE)
            with pytest.raises(NpcBridgeError) as info:
                await (await client.say("smith", "rich", "again")).text()
        assert info.value.code == "budget_exceeded"
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


async def test_npc_budget_and_custom_catalog_from_config(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    catalog = [
        {
            "id": "studio-8b",
            "aliases": ["fast"],
            "input_usd_per_m": 1.0,
            "output_usd_per_m": 2.0,
            "tier": "small",
            "fallbacks": [],
        },
        {"id": "studio-70b", "input_usd_per_m": 3.0, "output_usd_per_m": 4.0, "tier": "large"},
    ]
    async with await bridge_with(
        fake_upstream, tmp_path, models=catalog, upstream__default_model="studio-8b"
    ) as b:
        fake_upstream.script(Reply(text="Pricey.", usage=BIG_USAGE))
        async with await b.client() as client:
            await client.define_npc("bard", {"name": "Bard", "budget_usd_per_day": 0.05})
            await client.define_npc("lord", {"name": "Lord", "model": "fast", "tier": "large"})
            first = await client.say("bard", "p1", "sing")
            await first.text()
            assert first.end["model"] == "studio-8b"
            assert first.end["cost_usd"] == pytest.approx((100_000 * 1.0 + 1000 * 2.0) / 1e6)
            with pytest.raises(NpcBridgeError) as info:
                await (await client.say("bard", "p2", "again")).text()
            assert info.value.code == "budget_exceeded" and "npc" in info.value.message
            lord = await client.say("lord", "p1", "hi")  # an explicit model (alias) wins
            await lord.text()
            assert lord.end["model"] == "studio-8b"
            await client.define_npc("duke", {"name": "Duke", "tier": "large"})
            duke = await client.say("duke", "p1", "hi")
            await duke.text()
            assert duke.end["model"] == "studio-70b"
        assert [r.model for r in fake_upstream.requests] == ["studio-8b", "studio-8b", "studio-70b"]


async def test_two_servers_on_redis_share_rate_limits_and_budgets(
    fake_upstream: FakeUpstream,
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    settings = {
        "store__url": redis_url,
        "ratelimit__rpm": 3,
        "budget__global_usd_per_day": 0.004,
    }
    async with (
        await bridge_with(fake_upstream, tmp_path / "a", **settings) as a,
        await bridge_with(fake_upstream, tmp_path / "b", **settings) as b,
    ):
        assert a.app.store is not None and a.app.store.shared
        if time.time() % 60 > 58:  # keep the requests in one fixed minute window
            await asyncio.sleep(2.5)
        fake_upstream.script(Reply(text="Costly.", usage=BIG_USAGE))
        async with await a.client() as one, await b.client() as two:
            await one.define_npc("smith", {**ALONE, "latency_budget_ms": 100})
            await two.define_npc("smith", {**ALONE, "latency_budget_ms": 100})
            await (await one.say("smith", "p1", "one")).text()  # spends $0.00508
            # the day's global budget is spent for both servers
            with pytest.raises(NpcBridgeError) as info:
                await (await two.say("smith", "p2", "two")).text()
            assert info.value.code == "budget_exceeded"
            await a.app.gateway.counters().add_counter(
                a.app.gateway.budgets.scopes("p1", "")[2].key, -1e9
            )  # refund, so the next refusals can only come from the rate limit
            await (await two.say("smith", "p2", "three")).text()
            await (await one.say("smith", "p3", "four")).text()
            with pytest.raises(NpcBridgeError) as info:
                await (await two.say("smith", "p4", "five")).text()
            assert info.value.code == "rate_limited"  # 3 a minute between the two servers
        assert len(fake_upstream.requests) == 3


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
