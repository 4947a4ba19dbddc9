"""The gateway's cost, budgets and model choice end to end: per-player, session, global and
npc budgets, cost against the reported usage, totals across a restart and across two servers on
a real Redis, a configured catalog, and the choice by urgency, persona, budget or a plugin."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from gateway_helpers import (
    ALONE,
    BIG_USAGE,
    LARGE,
    LARGEST,
    SMALL,
    SMITH,
    bridge_with,
    price,
)

from npcbridge.client import NpcBridgeError
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply
from npcbridge.testing.redis_server import redis_session_url, redis_url  # noqa: F401

# ------------------------------------------------------------------ cost and budgets


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
