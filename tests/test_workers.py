"""``npcbridge serve --workers N``: several real server processes on one port, one SQLite file."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from test_budget_reservations import LIMIT_USD, billed_usd, say_all, worst_turn_usd
from test_memory_processes import SMITH, serve_env, talk

from npcbridge.client import Client, NpcBridgeError
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.serving import serving

#: the supervisor's line once every worker listens
READY = r"workers serve (ws://\S+)"


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def worker_pids(log: str) -> list[int]:
    match = re.search(r"workers serve \S+ \(pids ([\d, ]+)\)", log)
    assert match, log
    return [int(pid) for pid in match.group(1).split(", ")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_workers_share_the_port_the_store_and_metrics(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = serve_env(str(tmp_path / "shared.db"), fake_upstream)
    async with serving(env, "--workers", "2", ready=READY) as served:
        pids = worker_pids(served.log)
        assert len(pids) == 2 and all(alive(pid) for pid in pids)

        async def player(n: int) -> None:
            async with await Client.connect(served.url) as client:
                await client.define_npc("smith", SMITH)
                await talk(client, "smith", f"p{n}", f"hello {n}")

        # 24 connections: the kernel spreads them over both workers (all on one: 2**-23)
        await asyncio.gather(*(player(n) for n in range(24)))
        # a player's memory is in the shared file, whichever worker answers the next turn
        async with await Client.connect(served.url) as client:
            await client.define_npc("smith", SMITH)
            await talk(client, "smith", "p3", "remember me?")
        assert {"role": "user", "content": "hello 3"} in fake_upstream.requests[-1].messages

        await asyncio.sleep(1.5)  # every worker has published its series since
        base = served.url.replace("ws://", "http://")
        text = http_get(base + "metrics")
        turns: dict[str, float] = {}
        for worker, value in re.findall(
            r'npcbridge_turns_total\{[^}]*worker="(\d)"[^}]*\} (\S+)', text
        ):
            turns[worker] = turns.get(worker, 0.0) + float(value)
        assert set(turns) == {"0", "1"} and all(turns.values())
        assert sum(turns.values()) == 25
        assert text.count("# TYPE npcbridge_turns_total counter") == 1
        pid = served.proc.pid
        code = await served.stop()
    assert code == 0
    assert not alive(pid) and not any(alive(p) for p in pids)


async def test_budgets_hold_across_workers(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "npcbridge.toml"
    config.write_text(
        '[upstream]\ndefault_model = "pricey"\n[server]\nmax_in_flight = 64\n'
        f"[budget]\nper_player_usd_per_day = {LIMIT_USD}\n"
        '[[models]]\nid = "pricey"\ninput_usd_per_m = 1000.0\noutput_usd_per_m = 1000.0\n'
        'tier = "small"\nfallbacks = []\n'
    )
    env = {**serve_env(str(tmp_path / "budget.db"), fake_upstream), "NPCBRIDGE_CONFIG": str(config)}
    fake_upstream.ttft_ms = 500
    async with serving(env, "--workers", "2", ready=READY) as served:
        outcomes = [
            outcome
            for batch in await asyncio.gather(*(say_all(served.url, 8) for _ in range(8)))
            for outcome in batch
        ]
    served_costs = [cost for finish, cost in outcomes if finish == "stop"]
    assert served_costs and len(served_costs) < 64
    assert {finish for finish, _ in outcomes} == {"stop", "budget_exceeded"}
    assert billed_usd(fake_upstream) <= LIMIT_USD + worst_turn_usd(fake_upstream)


async def test_a_crashed_worker_is_started_again(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = serve_env(str(tmp_path / "crash.db"), fake_upstream)
    async with serving(env, "--workers", "2", ready=READY) as served:
        first, second = worker_pids(served.log)
        os.kill(first, signal.SIGKILL)
        for _ in range(100):
            await asyncio.sleep(0.1)
            if "starting it again" in served.log and served.log.count("listening on") >= 3:
                break
        assert f"worker 0 (pid {first}) exited with status -9" in served.log
        async with await Client.connect(served.url) as client:  # still served
            await client.define_npc("smith", SMITH)
            await talk(client, "smith", "p1", "still there?")
        assert alive(second)


async def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    env = serve_env(str(tmp_path / "no-such-folder" / "x.db"))
    with pytest.raises(RuntimeError, match="exited before it was ready") as failed:
        async with serving(env, "--workers", "2", ready=READY):
            pass
    assert "does not exist" in str(failed.value)
    assert "a worker exited during start-up (status 2)" in str(failed.value)


async def test_upstream_rate_limits_hold_across_workers(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # 2 requests a minute for the whole server, whichever worker each player reaches
    config = tmp_path / "npcbridge.toml"
    config.write_text("[ratelimit]\nrpm = 2\n")
    env = {**serve_env(str(tmp_path / "rl.db"), fake_upstream), "NPCBRIDGE_CONFIG": str(config)}
    if time.time() % 60 > 50:  # keep every request in one fixed minute window
        await asyncio.sleep(61 - time.time() % 60)
    async with serving(env, "--workers", "2", ready=READY) as served:

        async def player(n: int) -> str:
            async with await Client.connect(served.url) as client:
                persona = {**SMITH, "fallbacks": [], "latency_budget_ms": 100}
                await client.define_npc("smith", persona)
                try:
                    await (await client.say("smith", f"p{n}", "hello")).text()
                except NpcBridgeError as exc:
                    return exc.code
                return "stop"

        outcomes = await asyncio.gather(*(player(n) for n in range(12)))
    assert sorted(outcomes) == ["rate_limited"] * 10 + ["stop"] * 2
    assert len(fake_upstream.requests) == 2
