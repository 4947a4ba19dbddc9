"""The embedded store: one SQLite file (the default), accessed through aiosqlite.

Writes go through aiosqlite, which runs the writing connection in its own thread, so a write
waiting on a lock or an fsync never blocks the event loop. Reads of a file database run inline on
the event loop through a second, read-only connection: they are indexed look-ups (tens of
microseconds, ``bench/RESULTS.md``) where a round trip to the writer's thread costs ten times the
query, and recall sits on the path to the first token. WAL readers never wait for the writer;
a read that would wait anyway (another process holding an exclusive lock, recovery of a crashed
writer's WAL) is not retried inline but handed to the writer's thread, which waits without
blocking the loop. An in-memory database has no second connection and reads on the thread too.

The file is opened in WAL mode with ``synchronous=NORMAL``: readers do not wait for the writer, and
a committed transaction survives a crash of the server process (SIGKILL included); only an OS
crash or power loss may roll back the last commits (never corrupt the file). Set
``?synchronous=full`` on a ``sqlite:///`` URL to fsync every commit instead.

The schema is versioned: ``schema_version`` holds the version and :data:`MIGRATIONS` the steps
from each version to the next, applied in one transaction at open. A file written by a newer
npcbridge is refused rather than guessed at.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiosqlite

from .base import CounterLimit, MemoryRecord, StoreError, TurnRecord, refuses

#: migrations[i] takes the schema from version i to i + 1
MIGRATIONS: list[str] = [
    """
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        npc TEXT NOT NULL,
        player TEXT NOT NULL,
        user_text TEXT NOT NULL,
        reply_text TEXT NOT NULL,
        status TEXT NOT NULL,
        finish TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        session_id TEXT NOT NULL DEFAULT '',
        request_id TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL
    );
    CREATE INDEX turns_pair ON turns (npc, player, id);
    CREATE INDEX turns_player ON turns (player);
    CREATE TABLE memories (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        npc TEXT NOT NULL,
        player TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        importance INTEGER NOT NULL,
        at REAL NOT NULL,
        last_access REAL NOT NULL
    );
    CREATE INDEX memories_pair ON memories (npc, player);
    CREATE INDEX memories_player ON memories (player);
    CREATE TABLE watermarks (
        npc TEXT NOT NULL,
        player TEXT NOT NULL,
        turn_id INTEGER NOT NULL,
        PRIMARY KEY (npc, player)
    );
    CREATE TABLE counters (
        key TEXT PRIMARY KEY,
        value REAL NOT NULL,
        expires REAL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
#: expired counters are swept after this many adds
SWEEP_EVERY = 1000
#: add ?2 to counter ?1 (expiring at ?3 when created), restarting it when expired at time ?4
_ADD_COUNTER = (
    "INSERT INTO counters (key, value, expires) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (key) DO UPDATE SET "
    "value = CASE WHEN expires IS NOT NULL AND expires <= ?4 "
    "THEN excluded.value ELSE value + excluded.value END, "
    "expires = CASE WHEN expires IS NOT NULL AND expires <= ?4 "
    "THEN excluded.expires ELSE COALESCE(expires, excluded.expires) END"
)


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """The file path (or ``:memory:``) and query options of a SQLite store URL.

    A bare path is used as-is. ``sqlite:///`` URLs follow SQLAlchemy's convention: three slashes
    then a relative path (``sqlite:///npc.db``), four for an absolute one
    (``sqlite:////var/lib/npc.db``); ``sqlite:///:memory:`` is an in-memory database.
    """
    options: dict[str, str] = {}
    if not url.startswith("sqlite://"):
        return url, options
    rest, _, query = url[len("sqlite://") :].partition("?")
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        options[key.lower()] = value.lower()
    path = rest[1:] if rest.startswith("/") else rest
    return path or ":memory:", options


def _open_reader(path: str, name: str) -> sqlite3.Connection:
    """The read-only connection used inline on the event loop. ``timeout=0``: a read that
    would wait for a lock fails at once (and is handed to the writer's thread) instead of
    sleeping on the loop."""
    try:
        reader = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        reader.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise StoreError(f"store {name}: cannot open SQLite database: {exc}") from None
    return reader


def _checked_file(path: str) -> str:
    """Expand ``~`` and check the directory exists (SQLite's own message is vaguer)."""
    file = Path(path).expanduser()
    if not file.resolve().parent.is_dir():
        raise StoreError(f"store {path}: directory {file.resolve().parent} does not exist")
    if file.is_dir():
        raise StoreError(f"store {path}: is a directory, not a database file")
    return str(file)


class SqliteStore:
    """A store in one SQLite file."""

    shared = False
    #: what a write raises while the file cannot be written (locked beyond the busy timeout,
    #: disk full, I/O error); see npcbridge.stores.writes
    unavailable_errors: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def __init__(
        self, db: aiosqlite.Connection, name: str, reader: sqlite3.Connection | None = None
    ) -> None:
        self.db = db
        self.name = name
        self.reader = reader
        self._write_lock = asyncio.Lock()
        self._adds = 0
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        """Open (creating if needed) and migrate the database named by ``url``."""
        path, options = sqlite_path(url)
        name = path
        if path != ":memory:":
            path = _checked_file(path)
        synchronous = options.get("synchronous", "normal").upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"store {url}: synchronous must be off, normal, full or extra")
        try:
            db = await aiosqlite.connect(path, timeout=10.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"store {name}: cannot open SQLite database: {exc}") from None
        store = cls(db, name)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={synchronous}")
            await db.execute("PRAGMA foreign_keys=ON")
            await store._migrate()
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"store {name}: cannot open SQLite database: {exc}") from None
        except StoreError:
            await db.close()
            raise
        if path != ":memory:":
            try:
                store.reader = _open_reader(path, name)
            except StoreError:
                await db.close()
                raise
        return store

    async def _migrate(self) -> None:
        await self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        async with self.db.execute("SELECT version FROM schema_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.name}: schema version {version} is newer than this npcbridge "
                f"supports ({SCHEMA_VERSION}); upgrade npcbridge"
            )
        if version == SCHEMA_VERSION:
            return
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            for step in MIGRATIONS[version:]:
                for statement in filter(str.strip, step.split(";")):
                    await self.db.execute(statement)
            await self.db.execute("DELETE FROM schema_version")
            await self.db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        """Close the connection (WAL content is checkpointed by SQLite)."""
        if self._closed:
            return
        self._closed = True
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        await self.db.close()

    async def _write(self, sql: str, params: tuple[Any, ...] = ()) -> aiosqlite.Cursor:
        """Run one writing statement; autocommit mode commits it before this returns. The lock
        keeps single statements out of a multi-statement transaction in progress."""
        async with self._write_lock:
            return await self.db.execute(sql, params)

    async def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run one statement on the writer's thread and fetch its rows in a single trip
        (execute, fetch and close as separate awaits would cost three)."""
        return list(await self.db.execute_fetchall(sql, params))

    async def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run one query: inline on the read-only connection, or on the writer's thread when
        there is none or the read would have to wait for a lock (see the module docstring)."""
        if self.reader is not None:
            try:
                return self.reader.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
        return await self._all(sql, params)

    # ---------------------------------------------------------------- counters

    async def add_counter(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        """Atomically add to a counter and return the new total (see :mod:`.base`)."""
        now = time.time()
        expires = now + ttl_s if ttl_s is not None else None
        async with self._write_lock:
            rows = await self._all(
                _ADD_COUNTER + " RETURNING value", (key, float(amount), expires, now)
            )
            self._adds += 1
            if self._adds % SWEEP_EVERY == 0:
                await self.db.execute(
                    "DELETE FROM counters WHERE expires IS NOT NULL AND expires <= ?", (now,)
                )
        return float(rows[0][0])

    async def get_counter(self, key: str) -> float:
        """The counter's value, 0.0 when missing or expired."""
        rows = await self._read(
            "SELECT value FROM counters WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (key, time.time()),
        )
        return float(rows[0][0]) if rows else 0.0

    async def reserve_counters(self, items: list[CounterLimit]) -> int | None:
        """Check and add in one ``BEGIN IMMEDIATE`` transaction, which holds the file's write
        lock, so other processes on the same file see all of it or none (see :mod:`.base`)."""
        now = time.time()
        keys = [key for key, _amount, _limit, _ttl in items]
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                rows = await self._all(
                    f"SELECT key, value FROM counters WHERE key IN ({','.join('?' * len(keys))}) "
                    "AND (expires IS NULL OR expires > ?)",
                    (*keys, now),
                )
                values = {str(key): float(value) for key, value in rows}
                for index, (key, amount, limit, _ttl) in enumerate(items):
                    value = values.get(key, 0.0)
                    if refuses(value, amount, limit):
                        await self.db.execute("ROLLBACK")
                        return index
                await self.db.executemany(
                    _ADD_COUNTER,
                    [
                        (key, float(amount), now + ttl if ttl is not None else None, now)
                        for key, amount, _limit, ttl in items
                    ],
                )
                await self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    await self.db.execute("ROLLBACK")
                raise
        return None

    # ---------------------------------------------------------------- turns

    async def append_turn(self, turn: TurnRecord) -> int:
        """Insert a finished turn; committed when this returns."""
        cursor = await self._write(
            "INSERT INTO turns (npc, player, user_text, reply_text, status, finish, model, "
            "session_id, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                turn.npc,
                turn.player,
                turn.user_text,
                turn.reply_text,
                turn.status,
                turn.finish,
                turn.model,
                turn.session_id,
                turn.request_id,
                turn.at,
            ),
        )
        turn.id = int(cursor.lastrowid or 0)
        return turn.id

    async def recent_turns(self, npc: str, player: str, limit: int) -> list[TurnRecord]:
        """The newest ``limit`` turns of (npc, player), oldest first."""
        rows = await self._read(
            "SELECT id, npc, player, user_text, reply_text, status, finish, model, session_id, "
            "request_id, at FROM turns WHERE npc = ? AND player = ? ORDER BY id DESC LIMIT ?",
            (npc, player, limit),
        )
        return [
            TurnRecord(
                id=r[0],
                npc=r[1],
                player=r[2],
                user_text=r[3],
                reply_text=r[4],
                status=r[5],
                finish=r[6],
                model=r[7],
                session_id=r[8],
                request_id=r[9],
                at=r[10],
            )
            for r in reversed(rows)
        ]

    async def get_watermark(self, npc: str, player: str) -> int:
        """The newest summarised turn id of (npc, player)."""
        rows = await self._read(
            "SELECT turn_id FROM watermarks WHERE npc = ? AND player = ?", (npc, player)
        )
        return int(rows[0][0]) if rows else 0

    async def set_watermark(self, npc: str, player: str, turn_id: int) -> None:
        """Advance the summary watermark of (npc, player)."""
        await self._write(
            "INSERT INTO watermarks (npc, player, turn_id) VALUES (?, ?, ?) "
            "ON CONFLICT (npc, player) DO UPDATE SET turn_id = MAX(turn_id, excluded.turn_id)",
            (npc, player, turn_id),
        )

    # ---------------------------------------------------------------- memories

    async def add_memory(self, memory: MemoryRecord) -> int:
        """Insert a long-term memory."""
        cursor = await self._write(
            "INSERT INTO memories (npc, player, kind, text, importance, at, last_access) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                memory.npc,
                memory.player,
                memory.kind,
                memory.text,
                memory.importance,
                memory.at,
                memory.last_access or memory.at,
            ),
        )
        memory.id = int(cursor.lastrowid or 0)
        return memory.id

    async def memories(self, npc: str, player: str) -> list[MemoryRecord]:
        """Memories about ``player`` and world facts of ``npc``, oldest first."""
        rows = await self._read(
            "SELECT id, npc, player, kind, text, importance, at, last_access FROM memories "
            "WHERE npc = ? AND player IN (?, '') ORDER BY id",
            (npc, player),
        )
        return [
            MemoryRecord(
                id=r[0],
                npc=r[1],
                player=r[2],
                kind=r[3],
                text=r[4],
                importance=r[5],
                at=r[6],
                last_access=r[7],
            )
            for r in rows
        ]

    async def touch_memories(self, npc: str, player: str, ids: list[int], at: float) -> None:
        """Set ``last_access`` of the given memories."""
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        await self._write(
            f"UPDATE memories SET last_access = ? WHERE npc = ? AND id IN ({marks})",
            (at, npc, *ids),
        )

    # ---------------------------------------------------------------- erasure

    async def forget(self, player: str, npc: str | None = None) -> int:
        """Erase a player's data (one NPC or all) in one transaction; return rows removed."""
        if not player:
            return 0
        where, params = (
            ("player = ?", (player,))
            if npc is None
            else (
                "player = ? AND npc = ?",
                (player, npc),
            )
        )
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                turns = await self.db.execute(f"DELETE FROM turns WHERE {where}", params)
                memories = await self.db.execute(f"DELETE FROM memories WHERE {where}", params)
                await self.db.execute(f"DELETE FROM watermarks WHERE {where}", params)
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        return int(turns.rowcount) + int(memories.rowcount)
