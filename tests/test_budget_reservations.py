"""Budgets hold under concurrency and cannot be bypassed: the worst case of a turn is reserved
atomically in the store at admission and settled to the real cost at the end (SQLite, Redis,
two server processes); uncatalogued models are priced; cancelled and broken turns are charged."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from test_memory_processes import serve_env

from npcbridge.client import Client, NpcBridgeError
from npcbridge.protocol.messages import Usage
from npcbridge.stores import Store
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply, count_prompt_tokens
from npcbridge.testing.redis_server import redis_session_url, redis_url  # noqa: F401
from npcbridge.testing.serving import serving

SMITH = {"name": "Brom", "description": "A blacksmith.", "fallbacks": []}
#: $0.001 a token: a turn of ~100 prompt and 60 reply tokens costs ~$0.16
PRICEY = {
    "id": "pricey",
    "input_usd_per_m": 1000.0,
    "output_usd_per_m": 1000.0,
    "tier": "small",
    "fallbacks": [],
}
MAX_TOKENS = 100
LIMIT_USD = 1.0


# ------------------------------------------------------------------ the store primitive


async def test_reserve_counters_is_all_or_nothing(store: Store) -> None:
    await store.add_counter("budget:a", 5)
    items = [("budget:a", 3.0, 10.0, 60.0), ("budget:b", 3.0, 4.0, None)]
    assert await store.reserve_counters(items) is None
    assert await store.get_counter("budget:a") == 8 and await store.get_counter("budget:b") == 3
    assert await store.reserve_counters(items) == 0  # 8 + 3 > 10: nothing is added
    assert await store.get_counter("budget:a") == 8 and await store.get_counter("budget:b") == 3
    assert await store.reserve_counters([("budget:a", 2.0, 10.0, 60.0), items[1]]) == 1
    assert await store.get_counter("budget:a") == 8
    assert await store.reserve_counters([("budget:c", 0.0, 0.0, None)]) == 0  # a zero limit


async def test_reserve_counters_is_atomic_under_concurrency(store: Store) -> None:
    results = await asyncio.gather(
        *(store.reserve_counters([("budget:x", 1.0, 10.0, 60.0)]) for _ in range(50))
    )
    assert results.count(None) == 10
    assert await store.get_counter("budget:x") == 10


async def test_reserve_counters_sets_the_ttl_once(store: Store) -> None:
    assert await store.reserve_counters([("rl:t", 1.0, 9.0, 0.3)]) is None
    await asyncio.sleep(0.15)
    assert await store.reserve_counters([("rl:t", 1.0, 9.0, 0.3)]) is None  # not extended
    await asyncio.sleep(0.25)
    assert await store.get_counter("rl:t") == 0


# ------------------------------------------------------------------ concurrent turns


def billed_usd(fake: FakeUpstream) -> float:
    """What the upstream billed, at the PRICEY model's price."""
    return sum(
        (r.usage["prompt_tokens"] + r.usage["completion_tokens"]) / 1000
        for r in fake.requests
        if r.usage is not None
    )


def worst_turn_usd(fake: FakeUpstream) -> float:
    """One turn's worst case: its prompt plus max_tokens, at the PRICEY model's price."""
    return max(r.usage["prompt_tokens"] for r in fake.requests if r.usage) / 1000 + 0.1


async def say_all(
    url: str, n: int, words: int = 60, max_tokens: int | None = MAX_TOKENS
) -> list[tuple[str, float]]:
    """``n`` concurrent says from one player on one connection: (outcome, cost_usd) each."""
    options = {} if max_tokens is None else {"max_tokens": max_tokens}
    async with await Client.connect(url) as client:
        await client.define_npc("smith", SMITH)

        async def one(i: int) -> tuple[str, float]:
            reply = await client.say("smith", "p1", f"[[words:{words}]] {i}", **options)
            try:
                await reply.text()
            except NpcBridgeError as exc:
                return exc.code, 0.0
            assert reply.end is not None
            return str(reply.end["finish"]), float(reply.end["cost_usd"])

        return await asyncio.gather(*(one(i) for i in range(n)))


async def pricey_bridge(fake: FakeUpstream, tmp_path: Path, **overrides: Any) -> Bridge:
    # a turn without max_tokens is capped (and reserved) at MAX_TOKENS: ~$0.1 of the $1
    settings: dict[str, Any] = {
        "upstream__default_model": "pricey",
        "server__max_in_flight": 64,
        "budget__per_player_usd_per_day": LIMIT_USD,
        "gateway__budget_max_tokens": MAX_TOKENS,
        **overrides,
    }
    return await start_bridge(fake, tmp_path, models=[PRICEY], **settings)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_concurrent_turns_cannot_overrun_a_budget(
    fake_upstream: FakeUpstream, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    store = {} if backend == "sqlite" else {"store__url": request.getfixturevalue("redis_url")}
    fake_upstream.ttft_ms = 300  # every turn is still running when the last one is admitted
    async with await pricey_bridge(fake_upstream, tmp_path, **store) as b:
        outcomes = await say_all(b.url, 32)
        spent = await b.app.gateway.budgets.spent_usd(b.app.gateway.budgets.scopes("p1", "")[0])
    served = [cost for finish, cost in outcomes if finish == "stop"]
    refused = [finish for finish, _ in outcomes if finish == "budget_exceeded"]
    assert len(served) + len(refused) == 32 and served and refused
    worst = worst_turn_usd(fake_upstream)
    assert billed_usd(fake_upstream) <= LIMIT_USD + worst
    assert spent == pytest.approx(sum(served))  # settled to the real cost, nothing left held
    assert spent == pytest.approx(billed_usd(fake_upstream))


async def test_turns_without_max_tokens_are_capped_so_the_bound_holds(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # replies of 1,000 tokens, far past the 200 a turn without max_tokens is expected to write
    fake_upstream.ttft_ms = 300
    async with await pricey_bridge(fake_upstream, tmp_path, gateway__budget_max_tokens=150) as b:
        outcomes = await say_all(b.url, 32, words=1000, max_tokens=None)
    served = [cost for finish, cost in outcomes if finish in ("stop", "length")]
    assert served and len(served) < 32
    assert {r.body.get("max_tokens") for r in fake_upstream.requests} == {150}
    worst = max(r.usage["prompt_tokens"] for r in fake_upstream.requests if r.usage) / 1000
    assert billed_usd(fake_upstream) <= LIMIT_USD + worst + 0.15
    assert sum(served) == pytest.approx(billed_usd(fake_upstream))


async def test_two_processes_on_redis_cannot_overrun_a_budget(
    fake_upstream: FakeUpstream,
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    config = tmp_path / "npcbridge.toml"
    config.write_text(
        '[upstream]\ndefault_model = "pricey"\n[server]\nmax_in_flight = 64\n'
        f"[budget]\nper_player_usd_per_day = {LIMIT_USD}\n"
        '[[models]]\nid = "pricey"\ninput_usd_per_m = 1000.0\noutput_usd_per_m = 1000.0\n'
        'tier = "small"\nfallbacks = []\n'
    )
    env = {**serve_env(redis_url, fake_upstream), "NPCBRIDGE_CONFIG": str(config)}
    fake_upstream.ttft_ms = 500
    async with serving(env) as server_a, serving(env) as server_b:
        one, two = await asyncio.gather(say_all(server_a.url, 32), say_all(server_b.url, 32))
    outcomes = one + two
    served = [cost for finish, cost in outcomes if finish == "stop"]
    assert served and len(served) < 64
    assert {finish for finish, _ in outcomes} == {"stop", "budget_exceeded"}
    assert billed_usd(fake_upstream) <= LIMIT_USD + worst_turn_usd(fake_upstream)
    assert sum(served) == pytest.approx(billed_usd(fake_upstream))


# ------------------------------------------------------------------ uncatalogued models


async def test_uncatalogued_model_is_priced_when_budgets_are_on(
    fake_upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, budget__per_player_usd_per_day=0.001
    ) as b:
        usage = {"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100}
        fake_upstream.script(Reply(text="A long answer.", usage=usage))
        async with await b.client() as client:
            await client.define_npc("smith", {**SMITH, "model": "mystery-model"})
            with caplog.at_level(logging.WARNING, logger="npcbridge.gateway.core"):
                first = await client.say("smith", "p1", "hello")
                await first.text()
                await (await client.say("smith", "p2", "hello")).text()
            # the default catalog's highest prices: input $0.59, output $0.79 per million
            assert first.end is not None and first.end["model"] == "mystery-model"
            assert first.end["cost_usd"] == pytest.approx((2000 * 0.59 + 100 * 0.79) / 1e6)
            assert "estimated" not in first.end["usage"]  # the upstream reported it
            refused = await client.say("smith", "p1", "again")
            with pytest.raises(NpcBridgeError) as info:
                await refused.text()
            assert info.value.code == "budget_exceeded"  # p1 spent $0.00126 of $0.001
        warned = [r for r in caplog.records if "not in the catalog" in r.getMessage()]
        assert len(warned) == 1 and "mystery-model" in warned[0].getMessage()


async def test_uncatalogued_price_is_a_setting_and_free_without_budgets(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        await start_bridge(
            fake_upstream,
            tmp_path / "a",
            budget__global_usd_per_day=5.0,
            gateway__uncatalogued_input_usd_per_m=2.0,
            gateway__uncatalogued_output_usd_per_m=3.0,
        ) as priced,
        await start_bridge(fake_upstream, tmp_path / "b") as free,
    ):
        for bridge, prices in ((priced, (2.0, 3.0)), (free, (0.0, 0.0))):
            async with await bridge.client() as client:
                await client.define_npc("smith", {**SMITH, "model": "local-llama"})
                reply = await client.say("smith", "p1", "[[words:10]]")
                await reply.text()
            usage = fake_upstream.requests[-1].usage
            assert usage is not None and reply.end is not None
            expected = usage["prompt_tokens"] * prices[0] + usage["completion_tokens"] * prices[1]
            assert reply.end["cost_usd"] == pytest.approx(expected / 1e6)


# ------------------------------------------------------------------ cancelled and broken turns


async def test_cancelled_turn_is_charged_an_estimate(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.slow_tokens_per_s = 40
    async with await pricey_bridge(fake_upstream, tmp_path) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            reply = await client.say("smith", "p1", "[[slow]]")
            seen = 0
            async for _ in reply:
                seen += 1
                if seen == 5:
                    await reply.cancel()
            end = reply.end
            assert end is not None and end["finish"] == "cancelled"
        spent = await b.app.gateway.budgets.spent_usd(b.app.gateway.budgets.scopes("p1", "")[0])
    usage = end["usage"]
    assert usage["estimated"] is True
    assert usage["output_tokens"] >= 5
    assert usage["input_tokens"] == count_prompt_tokens(fake_upstream.requests[0].body["messages"])
    assert end["cost_usd"] == pytest.approx((usage["input_tokens"] + usage["output_tokens"]) / 1000)
    assert spent == pytest.approx(end["cost_usd"])  # charged, and the reservation released


def test_reply_end_usage_types_estimated() -> None:
    assert Usage.model_validate({"input_tokens": 1, "estimated": True}).estimated is True
    assert Usage.model_validate({"input_tokens": 1}).estimated is None
    with pytest.raises(ValidationError):
        Usage.model_validate({"estimated": "yes"})


async def test_turn_broken_after_deltas_is_charged_an_estimate(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await pricey_bridge(fake_upstream, tmp_path) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            reply = await client.say("smith", "p1", "[[cut:4]] [[words:40]]")
            streamed = []
            with pytest.raises(NpcBridgeError):
                async for delta in reply:
                    streamed.append(delta)
            end = reply.end
            assert end is not None and end["finish"] == "error"
        spent = await b.app.gateway.budgets.spent_usd(b.app.gateway.budgets.scopes("p1", "")[0])
    usage = end["usage"]
    # at least a token per streamed piece, at least 4 characters per token
    assert usage["estimated"] is True
    assert usage["output_tokens"] == max(4, -(-len("".join(streamed)) // 4))  # 4 chunks came
    assert end["cost_usd"] > 0 and spent == pytest.approx(end["cost_usd"])
