"""The embedded store: one SQLite file (the default), accessed through aiosqlite.

:class:`SqliteStore` keeps the turns, the summary watermarks, the long-term memories and the NPC
state documents, and erases a player's data. Its parts: the connections, how reads and writes
run and what survives a crash in :mod:`npcbridge.stores.sqlite_db`; the schema and its migrations in
:mod:`npcbridge.stores.sqlite_schema`; the counters (budgets, rate-limit windows) in
:mod:`npcbridge.stores.sqlite_counters`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from .base import MemoryRecord, TurnRecord
from .sqlite_counters import SqliteCounters


class SqliteStore(SqliteCounters):
    """A store in one SQLite file."""

    shared = False
    #: what a write raises while the file cannot be written (locked beyond the busy timeout,
    #: disk full, I/O error); see npcbridge.stores.writes
    unavailable_errors: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

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

    # ---------------------------------------------------------------- NPC state

    async def get_npc_states(self, npc: str, players: list[str]) -> dict[str, dict[str, Any]]:
        """The JSON state documents of ``npc`` for ``players``, by player (one indexed read)."""
        if not players:
            return {}
        marks = ",".join("?" * len(players))
        rows = await self._read(
            f"SELECT player, data FROM npc_state WHERE npc = ? AND player IN ({marks})",
            (npc, *players),
        )
        return {str(player): dict(json.loads(data)) for player, data in rows}

    async def put_npc_state(self, npc: str, player: str, data: dict[str, Any]) -> None:
        """Insert or replace the state document of (npc, player)."""
        await self._write(
            "INSERT INTO npc_state (npc, player, data, at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (npc, player) DO UPDATE SET data = excluded.data, at = excluded.at",
            (npc, player, json.dumps(data, separators=(",", ":")), time.time()),
        )

    # ---------------------------------------------------------------- erasure

    async def forget(self, player: str, npc: str | None = None) -> int:
        """Erase a player's data (one NPC or all; relationship state included) in one
        transaction; return rows removed."""
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
                states = await self.db.execute(f"DELETE FROM npc_state WHERE {where}", params)
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        return int(turns.rowcount) + int(memories.rowcount) + int(states.rowcount)
