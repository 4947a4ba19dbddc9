"""The SQLite store's connections: a writer through aiosqlite and an inline read-only reader.

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

The schema and its migrations: :mod:`npcbridge.stores.sqlite_schema`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any, Self

import aiosqlite

from .base import StoreError
from .sqlite_commits import GroupCommit, WriteResult
from .sqlite_schema import migrate

#: how long opening a file waits for other processes' locks (also the writer's busy timeout)
OPEN_TIMEOUT_S = 10.0
#: the pause between two attempts at preparing a file another process holds locked
OPEN_RETRY_S = 0.02


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


def open_reader(path: str, name: str) -> sqlite3.Connection:
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


async def _prepare(db: aiosqlite.Connection, name: str, synchronous: str) -> None:
    """Switch ``db`` to WAL, set its pragmas and migrate it, waiting out other processes.

    SQLite returns "database is locked" at once, without waiting the busy timeout, when waiting
    could deadlock: switching a new file to WAL while another process (a worker of the same
    server, opening the same new file) holds its write lock is one such case. Every step here
    is idempotent and the migration is one transaction, so the whole step is retried until
    :data:`OPEN_TIMEOUT_S` has passed.
    """
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={synchronous}")
            await db.execute("PRAGMA foreign_keys=ON")
            await migrate(db, name)
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        await asyncio.sleep(OPEN_RETRY_S)


class SqliteDatabase:
    """One SQLite file's connections and the statement runners the store's tables use."""

    def __init__(
        self, db: aiosqlite.Connection, name: str, reader: sqlite3.Connection | None = None
    ) -> None:
        """``db`` writes (on its own thread); ``reader`` reads inline (None: reads go to ``db``)."""
        self.db = db
        self.name = name
        self.reader = reader
        self._write_lock = asyncio.Lock()
        # aiosqlite has no public "run this function on the connection's thread"; its
        # ``_execute`` is what every one of its own methods uses
        self._commits = GroupCommit(db._execute, lambda: db._conn, self._write_lock)
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> Self:
        """Open (creating if needed) and migrate the database named by ``url``."""
        path, options = sqlite_path(url)
        name = path
        if path != ":memory:":
            path = _checked_file(path)
        synchronous = options.get("synchronous", "normal").upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"store {url}: synchronous must be off, normal, full or extra")
        try:
            db = await aiosqlite.connect(path, timeout=OPEN_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"store {name}: cannot open SQLite database: {exc}") from None
        store = cls(db, name)
        try:
            await _prepare(db, name, synchronous)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"store {name}: cannot open SQLite database: {exc}") from None
        except StoreError:
            await db.close()
            raise
        if path != ":memory:":
            try:
                store.reader = open_reader(path, name)
            except StoreError:
                await db.close()
                raise
        return store

    async def close(self) -> None:
        """Close the connection (WAL content is checkpointed by SQLite)."""
        if self._closed:
            return
        self._closed = True
        await self._commits.drained()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        await self.db.close()

    async def _write(self, sql: str, params: tuple[Any, ...] = ()) -> WriteResult:
        """Run one writing statement; it is committed before this returns, together with the
        writes made meanwhile (:mod:`.sqlite_commits`). Batches take the lock that keeps them
        out of a multi-statement transaction in progress."""
        return await self._commits.write(sql, params)

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
