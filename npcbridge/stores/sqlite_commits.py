"""Group commit for the SQLite writer: the single statements that arrive together share one
transaction and one trip to the writer's thread.

Each write still returns only once it is committed (so a turn stored before ``reply.end`` is on
disk, in the WAL, before the frame goes out); what changes is that writes made while a commit is
in progress wait for the next one together instead of each being its own transaction, its own
trip to the thread and its own wake-up of the event loop. Under load that turns dozens of
commits into one (``bench/RESULTS.md``); a lone write is one statement in autocommit mode, as
before.

A batch whose transaction fails once begun (a statement's error, a full disk) is rolled back as a
whole and its statements are run again one by one, so every caller gets its own statement's
outcome and no write is applied twice. A batch that cannot begin (the file locked past the busy
timeout) gives every statement that error at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Statement = tuple[str, tuple[Any, ...]]


@dataclass(slots=True)
class WriteResult:
    """What one committed statement left: the new row's id, the rows changed, the rows it
    returned (``RETURNING``)."""

    lastrowid: int
    rowcount: int
    rows: list[Any]


def _one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> WriteResult:
    cursor = conn.execute(sql, params)
    rows = cursor.fetchall()
    return WriteResult(int(cursor.lastrowid or 0), cursor.rowcount, rows)


def run_batch(
    conn: sqlite3.Connection, statements: list[Statement]
) -> list[WriteResult | BaseException]:
    """Run ``statements`` in one transaction (on the writer's thread); per statement its result
    or the exception it raised when the batch had to fall back to one by one."""
    if len(statements) > 1:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            # the file cannot be written now (locked past the busy timeout, read-only, ...):
            # the same answer for every statement, without waiting once more for each
            return [exc] * len(statements)
        try:
            results: list[WriteResult | BaseException] = [
                _one(conn, sql, params) for sql, params in statements
            ]
            conn.execute("COMMIT")
            return results
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    out: list[WriteResult | BaseException] = []
    for sql, params in statements:
        try:
            out.append(_one(conn, sql, params))
        except Exception as exc:
            out.append(exc)
    return out


class GroupCommit:
    """Collects single-statement writes and commits them in batches, one batch at a time.

    ``execute(fn, *args)`` runs ``fn(*args)`` on the writer's thread (aiosqlite's queue);
    ``lock`` is held while a batch commits, so it never interleaves with a multi-statement
    transaction."""

    def __init__(
        self,
        execute: Callable[..., Awaitable[Any]],
        connection: Callable[[], sqlite3.Connection],
        lock: asyncio.Lock,
    ) -> None:
        self._execute = execute
        self._connection = connection
        self._lock = lock
        self._pending: list[tuple[Statement, asyncio.Future[WriteResult]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, sql: str, params: tuple[Any, ...]) -> WriteResult:
        """Run one writing statement; returns once the batch holding it is committed."""
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._pending.append(((sql, params), future))
        if self._task is None:
            self._task = asyncio.create_task(self._commit_batches(), name="sqlite-group-commit")
        # a caller cancelled meanwhile only stops waiting: its statement is committed with the
        # batch, as a statement already handed to the thread always was
        return await future

    async def drained(self) -> None:
        """Wait until every write handed in so far is committed (or failed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _commit_batches(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                statements = [statement for statement, _ in batch]
                results: list[WriteResult | BaseException]
                try:
                    async with self._lock:
                        connection = self._connection()
                        results = await self._execute(run_batch, connection, statements)
                except Exception as exc:  # the connection is closed
                    results = [exc] * len(batch)
                except asyncio.CancelledError:  # the loop shuts down: nobody waits forever
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._task = None
