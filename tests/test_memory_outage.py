"""Memory writes while the store cannot be reached: queued, replayed in order, bounded."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from npcbridge.app import App
from npcbridge.client import Client
from npcbridge.gateway.budget import NANO, today
from npcbridge.stores.writes import WriteQueue
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.redis_server import redis_process
from npcbridge.testing.scripted import ScriptedProvider, running_scripted_app, say

SMITH = {"name": "Brom", "description": "A blacksmith, rough but kind."}


class Down(ConnectionError):
    """What the flaky store raises while it is 'down'."""


class FlakyStore:
    """Just enough of a store for the queue: writes append to a log unless ``down``."""

    name = "flaky://"
    unavailable_errors: tuple[type[Exception], ...] = (Down,)

    def __init__(self) -> None:
        self.down = False
        self.log: list[int] = []

    async def put(self, n: int) -> None:
        if self.down:
            raise Down("connection refused")
        self.log.append(n)

    async def get_counter(self, key: str) -> float:
        if self.down:
            raise Down("connection refused")
        return 0.0


async def test_queue_replays_in_order_and_drops_the_oldest_beyond_its_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="npcbridge.store")
    store = FlakyStore()
    dropped: list[int] = []
    queue = WriteQueue(store, limit=5, on_drop=dropped.append, retry_s=0.01, max_retry_s=0.02)
    assert await queue.write(lambda: store.put(0)) is True
    store.down = True
    results = [await queue.write(lambda n=n: store.put(n)) for n in range(1, 9)]  # type: ignore[misc]
    assert results == [False] * 8 and queue.down and queue.pending == 5
    await asyncio.sleep(0.05)  # the replay task retries against the dead store meanwhile
    store.down = False
    assert await queue.drained(5)
    assert store.log == [0, 4, 5, 6, 7, 8]  # 1..3 were the oldest when the queue overflowed
    assert sum(dropped) == 3
    assert await queue.write(lambda: store.put(9)) is True  # direct again
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # outage, overflow, recovery
    assert "unavailable (Down: connection refused)" in lines[0]
    assert "queue is full" in lines[1]
    assert "answers again" in lines[2] and "5 writes replayed, 3 dropped" in lines[2]
    assert not any(r.exc_info for r in caplog.records)


async def test_failed_read_starts_an_outage_that_a_probe_ends() -> None:
    store = FlakyStore()
    queue = WriteQueue(store, retry_s=0.01)
    store.down = True
    assert queue.read_failed(Down("refused")) and queue.down
    assert not queue.read_failed(ValueError("a bug"))
    store.down = False
    assert await queue.drained(5) and not queue.down


async def test_queue_close_counts_what_is_left(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    dropped: list[int] = []
    queue = WriteQueue(store, on_drop=dropped.append, retry_s=0.01)
    store.down = True
    for n in range(3):
        await queue.write(lambda n=n: store.put(n))  # type: ignore[misc]
    await queue.close(0.05)
    assert dropped == [3] and queue.pending == 0
    assert "3 writes were still queued at shutdown" in caplog.text


async def _chat(client: Client, player: str, stop: asyncio.Event, acked: list[Any]) -> None:
    """Talk until ``stop``; record (player, text) of every turn that got reply.end stop."""
    n = 0
    while not stop.is_set():
        n += 1
        text = f"line {n} from {player}"
        reply = await client.say("smith", player, text)
        await reply.text()
        assert reply.end is not None
        if reply.end["finish"] == "stop":
            acked.append((player, text))
        await asyncio.sleep(0.01)


async def test_redis_killed_under_load_loses_no_acknowledged_turn(
    fake_upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with redis_process(durable=True) as redis:
        async with await start_bridge(fake_upstream, tmp_path, store__url=redis.url) as bridge:
            players = [f"p{i}" for i in range(6)]
            clients = [await bridge.client() for _ in players]
            for client in clients:
                await client.define_npc("smith", SMITH)
            stop = asyncio.Event()
            acked: list[Any] = []
            load = [
                asyncio.create_task(_chat(c, p, stop, acked))
                for c, p in zip(clients, players, strict=True)
            ]
            await asyncio.sleep(0.5)
            before = len(acked)
            redis.kill()
            killed_at = time.monotonic()
            await asyncio.sleep(2.0)
            during = len(acked) - before
            redis.start()
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*load)
            writes = bridge.app.plugins.get_plugin("npcbridge.memory.plugin")
            plugin_queue = getattr(writes, "writes", None)
            assert plugin_queue is not None
            assert await plugin_queue.drained(10)
            assert during > 10, "turns kept being answered while Redis was down"
            store = bridge.app.store
            assert store is not None
            for player in players:
                stored = {t.user_text for t in await store.recent_turns("smith", player, 1000)}
                missing = [text for p, text in acked if p == player and text not in stored]
                assert not missing, f"{len(missing)} acknowledged turns of {player} were lost"
            for client in clients:
                await client.close()
            metrics = bridge.app.gateway.metrics.render().decode()
            assert "npcbridge_memory_writes_dropped_total 0.0" in metrics
    assert time.monotonic() - killed_at < 30
    outage = [r for r in caplog.records if "is unavailable" in r.getMessage()]
    recovery = [r for r in caplog.records if "answers again after" in r.getMessage()]
    assert len(outage) == 1 and len(recovery) == 1, [r.getMessage() for r in caplog.records]
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks[:3]


async def test_budget_settlements_wait_for_the_store_with_one_line_per_outage(
    scripted_app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    store, writes = scripted_app.store, scripted_app.writes
    assert store is not None and writes is not None
    writes.retry_s = writes.max_retry_s = 0.01
    down = True
    add_counter, get_counter = store.add_counter, store.get_counter

    async def flaky_add(key: str, amount: float, ttl_s: float | None = None) -> float:
        if down:
            raise sqlite3.OperationalError("database is locked")
        return await add_counter(key, amount, ttl_s)

    async def flaky_get(key: str) -> float:
        if down:
            raise sqlite3.OperationalError("database is locked")
        return await get_counter(key)

    monkeypatch.setattr(store, "add_counter", flaky_add)
    monkeypatch.setattr(store, "get_counter", flaky_get)
    costs = []
    for n in range(3):
        said = await say(scripted_app, "blacksmith", f"hello {n}", request_id=f"t-{n}")
        costs.append(said.end["cost_usd"])
    # each turn queued its settlement and, the outage having begun, its memory write
    assert writes.down and writes.pending == 6 and all(cost > 0 for cost in costs)
    down = False
    assert await writes.drained(5)
    spent = await store.get_counter(f"budget:global:{today()}") / NANO
    # the real cost once the store is back (the counters round each cost up to a nano-dollar)
    assert spent == pytest.approx(sum(costs), abs=1e-8)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [line for line in lines if "could not record the cost" in line], lines
    assert len([line for line in lines if "is unavailable" in line]) == 1, lines
    assert len([line for line in lines if "answers again after" in line]) == 1, lines
    assert not any(r.exc_info for r in caplog.records)


async def test_a_limited_budget_during_an_outage_is_refused_for_now_without_tracebacks(
    scripted: ScriptedProvider, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    async with running_scripted_app(scripted, budget__per_player_usd_per_day=1.0) as app:
        store, writes = app.store, app.writes
        assert store is not None and writes is not None

        async def unreachable(*args: Any, **kwargs: Any) -> int | None:
            raise sqlite3.OperationalError("database is locked")

        writes.retry_s = writes.max_retry_s = 0.05
        # the whole store is down: the queue's probes fail too
        for method in ("reserve_counters", "add_counter", "get_counter", "recent_turns"):
            monkeypatch.setattr(store, method, unreachable)
        answers = [
            await say(app, "blacksmith", f"hello {n}", request_id=f"t-{n}") for n in range(3)
        ]
    for said in answers:
        error = said.error
        assert error is not None and error["code"] == "internal", said.frames
        assert error["retryable"] is True
        assert "budget store" in error["message"]
    assert not scripted.requests, "nothing goes upstream without a reservation"
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len([line for line in lines if "is unavailable" in line]) == 1, lines
    assert not any(r.exc_info for r in caplog.records), lines
