"""The store backends: SQLite and a real Redis run the same suite."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from npcbridge.stores import MemoryRecord, Store, StoreError, TurnRecord, open_store
from npcbridge.stores.redis import redact
from npcbridge.stores.sqlite_db import sqlite_path
from npcbridge.stores.sqlite_schema import SCHEMA_VERSION
from npcbridge.testing.redis_server import redis_session_url, redis_url  # noqa: F401


def turn(npc: str, player: str, text: str, status: str = "complete") -> TurnRecord:
    return TurnRecord(
        npc=npc, player=player, user_text=text, reply_text=f"re: {text}", status=status,
        at=time.time(),
    )  # fmt: skip


async def test_counters_add_and_read(store: Store) -> None:
    assert await store.get_counter("budget:x") == 0.0
    assert await store.add_counter("budget:x", 1.5) == 1.5
    assert await store.add_counter("budget:x", 0.25) == 1.75
    assert await store.get_counter("budget:x") == 1.75
    assert await store.add_counter("budget:x", -1.75) == 0.0


async def test_counters_are_atomic_under_concurrency(store: Store) -> None:
    totals = await asyncio.gather(*(store.add_counter("rl:k", 1) for _ in range(200)))
    assert sorted(totals) == [float(i) for i in range(1, 201)]
    assert await store.get_counter("rl:k") == 200.0


async def test_counter_ttl_is_a_fixed_window(store: Store) -> None:
    assert await store.add_counter("rl:w", 1, ttl_s=0.3) == 1
    await asyncio.sleep(0.15)
    assert await store.add_counter("rl:w", 1, ttl_s=0.3) == 2  # does not extend the window
    await asyncio.sleep(0.25)
    assert await store.get_counter("rl:w") == 0.0
    assert await store.add_counter("rl:w", 5, ttl_s=10) == 5  # a new window starts at 0


async def test_shared_flag(store: Store) -> None:
    assert store.shared is ("redis" in type(store).__name__.lower())


async def test_turns_round_trip_in_order(store: Store) -> None:
    ids = [await store.append_turn(turn("smith", "p1", f"t{i}")) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    await store.append_turn(turn("smith", "p2", "other player"))
    await store.append_turn(turn("smith", "p1", "cut", status="cancelled"))
    got = await store.recent_turns("smith", "p1", 3)
    assert [t.user_text for t in got] == ["t3", "t4", "cut"]
    assert got[-1].status == "cancelled" and got[0].reply_text == "re: t3"
    assert got[0].id == ids[3]
    assert await store.recent_turns("smith", "nobody", 10) == []


async def test_watermark_only_moves_forward(store: Store) -> None:
    assert await store.get_watermark("smith", "p1") == 0
    await store.set_watermark("smith", "p1", 7)
    await store.set_watermark("smith", "p1", 3)
    assert await store.get_watermark("smith", "p1") == 7


async def test_memories_include_world_facts_and_touch(store: Store) -> None:
    now = time.time()
    a = await store.add_memory(MemoryRecord("smith", "p1", "fact", "p1 owes 5 gold", 7, now))
    w = await store.add_memory(MemoryRecord("smith", "", "fact", "the mine is closed", 4, now))
    await store.add_memory(MemoryRecord("smith", "p2", "fact", "p2 is a thief", 9, now))
    await store.add_memory(MemoryRecord("elf", "p1", "summary", "talked of magic", 5, now))
    got = await store.memories("smith", "p1")
    assert [(m.id, m.text, m.importance) for m in got] == [
        (a, "p1 owes 5 gold", 7),
        (w, "the mine is closed", 4),
    ]
    assert all(m.last_access == pytest.approx(now) for m in got)
    await store.touch_memories("smith", "p1", [a, w], now + 60)
    got = await store.memories("smith", "p1")
    assert [m.last_access for m in got] == [pytest.approx(now + 60)] * 2
    assert [m.last_access for m in await store.memories("smith", "p2")][0] == pytest.approx(
        now + 60
    )  # the world fact was touched for everyone; p2's own fact was not
    p2_own = [m for m in await store.memories("smith", "p2") if m.player == "p2"][0]
    assert p2_own.last_access == pytest.approx(now)


async def test_forget_one_npc_or_everywhere(store: Store) -> None:
    now = time.time()
    for npc in ("smith", "elf"):
        await store.append_turn(turn(npc, "p1", "hello"))
        await store.append_turn(turn(npc, "p1", "again"))
        await store.add_memory(MemoryRecord(npc, "p1", "fact", "likes apples", 5, now))
        await store.set_watermark(npc, "p1", 1)
    await store.append_turn(turn("smith", "p2", "hi"))
    await store.add_memory(MemoryRecord("smith", "", "fact", "world", 5, now))
    assert await store.forget("p1", npc="smith") == 3
    assert await store.recent_turns("smith", "p1", 10) == []
    assert await store.get_watermark("smith", "p1") == 0
    assert len(await store.recent_turns("elf", "p1", 10)) == 2
    assert await store.forget("p1") == 3
    assert await store.recent_turns("elf", "p1", 10) == []
    assert [m.text for m in await store.memories("smith", "p1")] == ["world"]
    assert len(await store.recent_turns("smith", "p2", 10)) == 1
    assert await store.forget("p1") == 0


async def test_npc_state_round_trips_and_forget_erases_only_the_players_rows(
    store: Store,
) -> None:
    assert (await store.get_npc_states("guard", ["p1"])).get("p1") is None
    await store.put_npc_state("guard", "", {"mood": "angry", "intensity": 0.5})
    await store.put_npc_state("guard", "p1", {"trust": -10.0})
    await store.put_npc_state("guard", "p1", {"trust": -20.0, "familiarity": 3.0})
    await store.put_npc_state("smith", "p1", {"trust": 5.0})
    await store.put_npc_state("guard", "p2", {"trust": 1.0})
    assert (await store.get_npc_states("guard", ["p1"])).get("p1") == {
        "trust": -20.0,
        "familiarity": 3.0,
    }
    assert await store.forget("p1", npc="guard") == 1
    assert (await store.get_npc_states("guard", ["p1"])).get("p1") is None
    assert (await store.get_npc_states("smith", ["p1"])).get("p1") == {"trust": 5.0}
    assert await store.forget("p1") == 1
    assert (await store.get_npc_states("smith", ["p1"])).get("p1") is None
    # the NPC's own mood and other players' rows stay
    assert (await store.get_npc_states("guard", [""])).get("") == {
        "mood": "angry",
        "intensity": 0.5,
    }
    assert (await store.get_npc_states("guard", ["p2"])).get("p2") == {"trust": 1.0}
    assert await store.get_npc_states("guard", ["", "p2", "nobody"]) == {
        "": {"mood": "angry", "intensity": 0.5},
        "p2": {"trust": 1.0},
    }
    assert await store.get_npc_states("guard", []) == {}


async def test_names_with_separators_do_not_collide(store: Store) -> None:
    await store.append_turn(turn("a:b", "c", "one"))
    await store.append_turn(turn("a", "b:c", "two"))
    assert [t.user_text for t in await store.recent_turns("a:b", "c", 5)] == ["one"]
    assert [t.user_text for t in await store.recent_turns("a", "b:c", 5)] == ["two"]


# ------------------------------------------------------------------ SQLite specifics


async def test_sqlite_is_wal_and_versioned(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v.db"
    s = await open_store(str(path))
    await s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        await open_store(str(path))


async def test_two_processes_migrating_one_new_file_migrate_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers of one server open the same new file at once: both read version 0 before either
    takes the write lock, and the second must find the file migrated instead of creating the
    tables again."""
    import aiosqlite

    from npcbridge.stores import sqlite_schema

    real_version = sqlite_schema._version
    both_read = asyncio.Barrier(2)
    first_reads: dict[int, int] = {}

    async def version_after_both_read(db: aiosqlite.Connection, name: str) -> int:
        found = await real_version(db, name)
        if id(db) not in first_reads:
            first_reads[id(db)] = found
            await both_read.wait()
        return found

    monkeypatch.setattr(sqlite_schema, "_version", version_after_both_read)
    path = tmp_path / "shared.db"
    dbs = [await aiosqlite.connect(path, timeout=10.0, isolation_level=None) for _ in range(2)]
    try:
        await asyncio.gather(*(sqlite_schema.migrate(db, "shared.db") for db in dbs))
    finally:
        for db in dbs:
            await db.close()
    assert sorted(first_reads.values()) == [0, 0]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


async def test_opening_waits_for_another_process_holding_a_new_file_locked(
    tmp_path: Path,
) -> None:
    """A worker switching a new file to WAL while another worker holds its write lock gets
    "database is locked" at once from SQLite (no busy wait); opening retries instead of
    failing the worker's start-up."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other VALUES (1)")
    loop = asyncio.get_running_loop()
    release = loop.call_later(0.3, holder.execute, "COMMIT")
    started = loop.time()
    try:
        store = await open_store(str(path))
    finally:
        release.cancel()
        holder.close()
    try:
        assert loop.time() - started >= 0.25
        await store.add_counter("opened", 1.0)
        assert await store.get_counter("opened") == 1.0
    finally:
        await store.close()


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    s = await open_store(path)
    await s.append_turn(turn("smith", "p1", "remember me"))
    await s.add_counter("budget:day", 2.5)
    await s.put_npc_state("smith", "p1", {"trust": 12.0})
    await s.close()
    s = await open_store(f"sqlite:///{path}")
    try:
        assert [t.user_text for t in await s.recent_turns("smith", "p1", 5)] == ["remember me"]
        assert await s.get_counter("budget:day") == 2.5
        assert (await s.get_npc_states("smith", ["p1"])).get("p1") == {"trust": 12.0}
    finally:
        await s.close()


async def test_sqlite_reads_inline_and_hand_locked_reads_to_the_thread(tmp_path: Path) -> None:
    """Reads run on the loop through the read-only connection; a read that meets a lock fails
    at once there (no busy sleep on the loop) and is answered by the writer's thread."""
    import sqlite3

    from npcbridge.stores.sqlite import SqliteStore
    from npcbridge.stores.sqlite_db import open_reader

    s = await open_store(str(tmp_path / "inline.db"))
    assert isinstance(s, SqliteStore) and s.reader is not None
    try:
        await s.append_turn(turn("smith", "p1", "hello"))
        # read-after-write: the inline reader sees what the writer committed
        assert [t.user_text for t in await s.recent_turns("smith", "p1", 5)] == ["hello"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            s.reader.execute("DELETE FROM turns")

        # a reader on a file another connection holds exclusively (rollback journal: a WAL
        # file cannot be taken exclusively while our writer has it open)
        locked = tmp_path / "locked.db"
        holder = sqlite3.connect(locked, isolation_level=None)
        holder.execute("CREATE TABLE turns (x)")
        holder.execute("BEGIN EXCLUSIVE")
        inline = s.reader
        s.reader = open_reader(str(locked), "locked")
        try:
            started = time.perf_counter()
            turns = await s.recent_turns("smith", "p1", 5)
            assert time.perf_counter() - started < 1.0  # sqlite's default would sleep 5 s
            assert [t.user_text for t in turns] == ["hello"]  # from the writer's thread
        finally:
            s.reader.close()
            s.reader = inline
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        await s.close()
    assert s.reader is None


def test_sqlite_urls() -> None:
    assert sqlite_path("npc.db") == ("npc.db", {})
    assert sqlite_path("sqlite:///npc.db") == ("npc.db", {})
    assert sqlite_path("sqlite:////var/npc.db?synchronous=FULL") == (
        "/var/npc.db",
        {"synchronous": "full"},
    )
    assert sqlite_path("sqlite:///:memory:") == (":memory:", {})


async def test_open_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory .* does not exist"):
        await open_store(str(tmp_path / "missing" / "x.db"))
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open SQLite database"):
        await open_store(str(bad))
    with pytest.raises(StoreError, match="unsupported scheme 'postgres'"):
        await open_store("postgres://x")
    with pytest.raises(StoreError, match="cannot connect to Redis") as info:
        await open_store(f"redis://:hunter2@127.0.0.1:{_closed_port()}/0")
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


def _closed_port() -> int:
    from npcbridge.testing.redis_server import free_port

    return free_port()


def test_redact() -> None:
    assert redact("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"


async def test_concurrent_appends_keep_id_order(store: Store) -> None:
    ids = await asyncio.gather(
        *(store.append_turn(turn("smith", "p1", f"t{i}")) for i in range(50))
    )
    got = await store.recent_turns("smith", "p1", 100)
    assert [t.id for t in got] == sorted(ids)


async def test_redis_keeps_the_newest_turns_per_pair(
    redis_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import npcbridge.stores.redis as backend

    monkeypatch.setattr(backend, "MAX_TURNS_KEPT", 3)
    s = await open_store(redis_url)
    try:
        for i in range(5):
            await s.append_turn(turn("smith", "p1", f"t{i}"))
        assert [t.user_text for t in await s.recent_turns("smith", "p1", 10)] == ["t2", "t3", "t4"]
    finally:
        await s.close()


def test_missing_redis_server_fails_under_ci_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import npcbridge.testing.redis_server as rs

    monkeypatch.setattr(rs.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-server is not installed"):
        rs.redis_binary()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        rs.redis_binary()


async def test_sqlite_commits_concurrent_writes_together(tmp_path: Path) -> None:
    db = tmp_path / "group.db"
    store = await open_store(str(db))
    commits: list[str] = []
    try:
        await store.db.set_trace_callback(  # type: ignore[attr-defined]
            lambda sql: commits.append(sql) if sql.startswith(("COMMIT", "INSERT")) else None
        )
        records = [turn("smith", f"p{i}", f"t{i}") for i in range(50)]
        ids = await asyncio.gather(*(store.append_turn(r) for r in records))
        # every write committed, with its own row id, and they shared a few transactions
        assert sorted(ids) == ids and len(set(ids)) == 50
        assert [r.id for r in records] == ids
        assert sum(sql.startswith("INSERT") for sql in commits) == 50
        assert 1 <= commits.count("COMMIT") <= 5
        with closing(sqlite3.connect(db)) as other:  # committed: another connection sees them
            assert other.execute("SELECT count(*) FROM turns").fetchone()[0] == 50
    finally:
        await store.close()


async def test_sqlite_a_failing_write_fails_alone_in_its_batch(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "fail.db"))
    try:
        sqlite_store: Any = store
        good = [store.add_counter(f"c{i}", 1) for i in range(5)]
        bad = sqlite_store._write("INSERT INTO no_such_table VALUES (1)")
        results = await asyncio.gather(*good[:3], bad, *good[3:], return_exceptions=True)
        assert results[:3] == [1.0] * 3 and results[4:] == [1.0] * 2
        assert isinstance(results[3], sqlite3.OperationalError)
        # no write of the batch was lost or applied twice
        assert [await store.get_counter(f"c{i}") for i in range(5)] == [1.0] * 5
    finally:
        await store.close()
