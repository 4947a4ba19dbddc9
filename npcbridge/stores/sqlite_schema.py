"""The SQLite store's schema: the migrations from each version to the next and the step that
applies them at open.

``schema_version`` holds the version and :data:`MIGRATIONS` the steps from each version to the
next, applied in one transaction at open. A file written by a newer npcbridge is refused rather
than guessed at.
"""

from __future__ import annotations

import aiosqlite

from .base import StoreError

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
    """
    CREATE TABLE npc_state (
        npc TEXT NOT NULL,
        player TEXT NOT NULL,
        data TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (npc, player)
    );
    CREATE INDEX npc_state_player ON npc_state (player);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(db: aiosqlite.Connection, name: str) -> None:
    """Bring the database ``db`` (named ``name`` in errors) to :data:`SCHEMA_VERSION`."""
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
    version = await _version(db, name)
    if version == SCHEMA_VERSION:
        return
    await db.execute("BEGIN IMMEDIATE")
    try:
        # read again under the write lock: another process (a worker of the same server) may
        # have migrated the file between the first read and the lock
        version = await _version(db, name)
        for step in MIGRATIONS[version:]:
            for statement in filter(str.strip, step.split(";")):
                await db.execute(statement)
        await db.execute("DELETE FROM schema_version")
        await db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise


async def _version(db: aiosqlite.Connection, name: str) -> int:
    """The schema version stored in ``db``; refuses a version newer than this code knows."""
    async with db.execute("SELECT version FROM schema_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {name}: schema version {version} is newer than this npcbridge "
            f"supports ({SCHEMA_VERSION}); upgrade npcbridge"
        )
    return version
