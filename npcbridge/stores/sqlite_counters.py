"""The SQLite store's counters (budgets, rate-limit windows): atomic adds with expiry, reads,
and the all-or-nothing reservation of several counters under their limits."""

from __future__ import annotations

import sqlite3
import time

import aiosqlite

from .base import CounterLimit, refuses
from .sqlite_db import SqliteDatabase

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


class SqliteCounters(SqliteDatabase):
    """The counters of a SQLite store (see :mod:`npcbridge.stores.base`)."""

    def __init__(
        self, db: aiosqlite.Connection, name: str, reader: sqlite3.Connection | None = None
    ) -> None:
        """As :class:`SqliteDatabase`; expired counters are swept every ``SWEEP_EVERY`` adds."""
        super().__init__(db, name, reader)
        self._adds = 0

    async def add_counter(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        """Atomically add to a counter and return the new total (see :mod:`.base`)."""
        now = time.time()
        expires = now + ttl_s if ttl_s is not None else None
        added = await self._write(
            _ADD_COUNTER + " RETURNING value", (key, float(amount), expires, now)
        )
        self._adds += 1
        if self._adds % SWEEP_EVERY == 0:
            await self._write(
                "DELETE FROM counters WHERE expires IS NOT NULL AND expires <= ?", (now,)
            )
        return float(added.rows[0][0])

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
