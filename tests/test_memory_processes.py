"""Memory across real server processes: start-up errors, two processes on one Redis, SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from npcbridge.client import Client
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.redis_server import free_port, redis_session_url, redis_url  # noqa: F401
from npcbridge.testing.serving import serving

SMITH = {"name": "Brom", "description": "A blacksmith, rough but kind."}


def serve_env(store: str, fake: FakeUpstream | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NPCBRIDGE_", "GROQ_"))}
    env["NPCBRIDGE_STORE"] = store
    if fake is not None:
        env["NPCBRIDGE_BASE_URL"] = fake.base_url
        env["GROQ_API_KEY"] = "test-key"
    return env


async def talk(client: Client, npc: str, player: str, text: str) -> dict[str, Any]:
    reply = await client.say(npc, player, text)
    await reply.text()
    assert reply.end is not None
    return reply.end


def cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "npcbridge.cli", "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_cannot_open_sqlite_store(tmp_path: Path) -> None:
    proc = cli(serve_env(str(tmp_path / "missing" / "npc.db")))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (
        f"npcbridge: cannot start: store {tmp_path / 'missing' / 'npc.db'}: "
        f"directory {tmp_path / 'missing'} does not exist"
    )


def test_cli_cannot_reach_redis() -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    proc = cli(serve_env(url))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"npcbridge: cannot start: store {url.replace(':secret@', ':***@')}: "
        "cannot connect to Redis: "
    )
    assert "secret" not in proc.stderr and "Traceback" not in proc.stderr


async def test_two_processes_share_memory_through_redis(
    fake_upstream: FakeUpstream,
    redis_url: str,  # noqa: F811
) -> None:
    env = serve_env(redis_url, fake_upstream)
    async with serving(env) as server_a, serving(env) as server_b:
        async with await Client.connect(server_a.url) as a:
            assert "memory" in a.welcome["features"]
            await a.define_npc("smith", SMITH)
            await talk(a, "smith", "ann", "[[reply:Aye, a red dragon it is.]] Forge me a dragon")
            await a.request(
                {"type": "memory.add", "npc": "smith", "player": "ann", "text": "Ann paid 5 gold"}
            )
        async with await Client.connect(server_b.url) as b:
            await b.define_npc("smith", SMITH)
            await talk(b, "smith", "ann", "Is my dragon ready?")
            answer = await b.request({"type": "memory.query", "npc": "smith", "player": "ann"})
    last = fake_upstream.requests[-1].messages
    assert {"role": "assistant", "content": "Aye, a red dragon it is."} in last
    assert {
        "role": "user",
        "content": "[[reply:Aye, a red dragon it is.]] Forge me a dragon",
    } in last
    assert any("Ann paid 5 gold" in m["content"] for m in last if m["role"] == "system")
    assert [i["text"] for i in answer["items"]] == ["Ann paid 5 gold"]


async def test_sigkill_loses_no_acknowledged_turn(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    db = tmp_path / "kill.db"
    fake_upstream.tokens_per_s = 300
    env = serve_env(str(db), fake_upstream)
    acked: dict[str, list[str]] = {}
    stop = asyncio.Event()

    async def conversation(url: str, player: str) -> None:
        try:
            async with await Client.connect(url) as client:
                await client.define_npc("smith", SMITH)
                i = 0
                while not stop.is_set():
                    text = f"{player} line {i} [[words:8]]"
                    end = await talk(client, "smith", player, text)
                    if end["finish"] == "stop":
                        acked.setdefault(player, []).append(text)
                    i += 1
        except Exception:
            pass  # the server was killed under us

    async with serving(env) as served:
        tasks = [asyncio.create_task(conversation(served.url, f"p{n}")) for n in range(20)]
        await fake_upstream.wait_for(lambda: fake_upstream.completed >= 60, timeout=30)
        served.proc.send_signal(signal.SIGKILL)
        await served.proc.wait()
        stop.set()
        await asyncio.wait(tasks, timeout=10)
    assert sum(len(v) for v in acked.values()) >= 40 and len(acked) == 20

    with closing(sqlite3.connect(db)) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {
            (player, text)
            for player, text in con.execute(
                "SELECT player, user_text FROM turns WHERE status = 'complete'"
            )
        }
    missing = [(p, t) for p, texts in acked.items() for t in texts if (p, t) not in stored]
    assert missing == []

    # and the restarted server replays them in the window
    async with serving(env) as served:
        async with await Client.connect(served.url) as client:
            await client.define_npc("smith", SMITH)
            await talk(client, "smith", "p7", "still there?")
    sent = fake_upstream.requests[-1].messages
    assert {"role": "user", "content": acked["p7"][-1]} in sent
