"""The shared store: Redis (``redis://``, ``rediss://`` or ``unix://`` URLs), via redis.asyncio.

Use it when several npcbridge processes serve the same game: they then share conversation
windows, memories, budgets and rate-limit counters. Every key starts with ``npcbridge:``; pick a
database number in the URL (``redis://host:6379/2``) to keep several deployments apart.
NPC and player names are percent-encoded inside keys, so ``:`` in a name cannot collide.

Layout (``{n}`` = NPC, ``{p}`` = player, ``{k}`` = counter key)::

    npcbridge:schema                 "1" (refused when newer than this code)
    npcbridge:seq                    INCR source of turn and memory ids
    npcbridge:counter:{k}            INCRBYFLOAT value, PEXPIRE ... NX for the TTL
    npcbridge:turns:{n}:{p}          list of JSON turn records (newest MAX_TURNS_KEPT kept)
    npcbridge:mem:{n}:{p}            hash id -> JSON memory ({p} empty: world facts)
    npcbridge:memaccess:{n}:{p}      hash id -> last recall time
    npcbridge:wm:{n}:{p}             newest summarised turn id
    npcbridge:state:{n}:{p}          JSON NPC state ({p} empty: the NPC's own mood)
    npcbridge:player:{p}:npcs        set of NPCs holding data about {p} (for memory.forget)

Durability follows the Redis server's persistence settings (``appendonly yes`` with
``appendfsync everysec`` loses at most a second of writes when Redis itself crashes).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import CounterLimit, MemoryRecord, StoreError, TurnRecord

PREFIX = "npcbridge:"
SCHEMA_VERSION = 1
#: turns kept per (npc, player); older ones have been summarised long before
MAX_TURNS_KEPT = 1000
#: connections per process; more concurrent commands wait for a free one (never fail)
MAX_CONNECTIONS = 32

_MAX_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


# KEYS are counters; ARGV holds (amount, limit, ttl_ms or 0) per key. Returns 0 once every
# amount is added, else the 1-based index of the first counter that cannot take its amount
# (then nothing is added); the same rule as base.refuses and add_counter's PEXPIRE NX
_RESERVE_SCRIPT = """
for i = 1, #KEYS do
  local value = tonumber(redis.call('GET', KEYS[i]) or '0')
  local amount, limit = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  if value >= limit or value + amount > limit then return i end
end
for i = 1, #KEYS do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[3 * i - 2])
  local ttl = tonumber(ARGV[3 * i])
  if ttl > 0 and redis.call('PTTL', KEYS[i]) == -1 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 0
"""


# ARGV[1] is the record's JSON object without "id"; the id is spliced in as its first member
_APPEND_SCRIPT = """
local id = redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[2], '{"id": ' .. id .. ', ' .. string.sub(ARGV[1], 2))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('SADD', KEYS[3], ARGV[3])
return id
"""


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "redis://?"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _k(*parts: str) -> str:
    return PREFIX + ":".join(quote(part, safe="") for part in parts)


class RedisStore:
    """A store in Redis, shared by every server process that uses the same URL."""

    shared = True
    #: what a command raises while Redis cannot be reached (see npcbridge.stores.writes)
    unavailable_errors: tuple[type[Exception], ...] = (
        RedisConnectionError,
        RedisTimeoutError,
        OSError,
    )

    def __init__(self, client: aioredis.Redis, name: str) -> None:
        self.r = client
        self.name = name
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> RedisStore:
        """Connect, check the server answers, and check the data's schema version."""
        name = redact(url)
        try:
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=MAX_CONNECTIONS,
                timeout=10.0,
                decode_responses=True,
                socket_connect_timeout=5.0,
                socket_timeout=10.0,
            )
            client = aioredis.Redis.from_pool(pool)
        except (ValueError, RedisError) as exc:
            raise StoreError(f"store {name}: bad Redis URL: {exc}") from None
        try:
            await client.ping()
            version = await client.get(PREFIX + "schema")
            if version is None:
                await client.set(PREFIX + "schema", SCHEMA_VERSION, nx=True)
            elif int(version) > SCHEMA_VERSION:
                raise StoreError(
                    f"store {name}: schema version {version!s} is newer than this npcbridge "
                    f"supports ({SCHEMA_VERSION}); upgrade npcbridge"
                )
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"store {name}: cannot connect to Redis: {exc}") from None
        except StoreError:
            await client.aclose()
            raise
        return cls(client, name)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._closed:
            return
        self._closed = True
        await self.r.aclose()

    # ---------------------------------------------------------------- counters

    async def add_counter(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        """INCRBYFLOAT, and PEXPIRE NX (Redis >= 7) in the same MULTI transaction."""
        name = PREFIX + "counter:" + key
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.incrbyfloat(name, float(amount))
            if ttl_s is not None:
                pipe.pexpire(name, max(1, int(ttl_s * 1000)), nx=True)
            results = await pipe.execute()
        return float(results[0])

    async def get_counter(self, key: str) -> float:
        """The counter's value (Redis drops expired keys by itself)."""
        value = await self.r.get(PREFIX + "counter:" + key)
        return float(value) if value is not None else 0.0

    async def reserve_counters(self, items: list[CounterLimit]) -> int | None:
        """Check and add in one Lua script: Redis runs it atomically, so no other process's
        command falls between the check and the adds (see :mod:`.base`)."""
        args: list[float | int] = []
        for _key, amount, limit, ttl_s in items:
            args += [float(amount), float(limit), max(1, int(ttl_s * 1000)) if ttl_s else 0]
        refused = int(
            await self.r.eval(  # type: ignore[misc]
                _RESERVE_SCRIPT,
                len(items),
                *(PREFIX + "counter:" + key for key, _a, _l, _t in items),
                *args,
            )
        )
        return refused - 1 if refused else None

    # ---------------------------------------------------------------- turns

    async def append_turn(self, turn: TurnRecord) -> int:
        """Take an id, RPUSH the turn, trim the list and index the player: one atomic script,
        so list order is id order even with several processes appending."""
        data = asdict(turn)
        del data["id"]
        turn.id = int(
            await self.r.eval(  # type: ignore[misc]
                _APPEND_SCRIPT,
                3,
                PREFIX + "seq",
                _k("turns", turn.npc, turn.player),
                _k("player", turn.player, "npcs"),
                json.dumps(data),
                MAX_TURNS_KEPT,
                turn.npc,
            )
        )
        return turn.id

    async def recent_turns(self, npc: str, player: str, limit: int) -> list[TurnRecord]:
        """LRANGE of the newest ``limit`` turns."""
        rows = await self.r.lrange(_k("turns", npc, player), -limit, -1)
        return [TurnRecord(**json.loads(row)) for row in rows]

    async def get_watermark(self, npc: str, player: str) -> int:
        """The summary watermark of (npc, player)."""
        value = await self.r.get(_k("wm", npc, player))
        return int(value) if value is not None else 0

    async def set_watermark(self, npc: str, player: str, turn_id: int) -> None:
        """Raise the watermark atomically (a Lua max)."""
        await self.r.eval(_MAX_SCRIPT, 1, _k("wm", npc, player), int(turn_id))  # type: ignore[misc]

    # ---------------------------------------------------------------- memories

    async def add_memory(self, memory: MemoryRecord) -> int:
        """HSET the memory under a fresh id."""
        memory.id = int(await self.r.incr(PREFIX + "seq"))
        memory.last_access = memory.last_access or memory.at
        data = asdict(memory)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(_k("mem", memory.npc, memory.player), str(memory.id), json.dumps(data))
            pipe.hset(
                _k("memaccess", memory.npc, memory.player), str(memory.id), memory.last_access
            )
            if memory.player:
                pipe.sadd(_k("player", memory.player, "npcs"), memory.npc)
            await pipe.execute()
        return memory.id

    async def memories(self, npc: str, player: str) -> list[MemoryRecord]:
        """The player's memories and the world facts of ``npc``, oldest first."""
        async with self.r.pipeline(transaction=False) as pipe:
            for who in {player, ""}:
                pipe.hgetall(_k("mem", npc, who))
                pipe.hgetall(_k("memaccess", npc, who))
            results = await pipe.execute()
        out: list[MemoryRecord] = []
        for items, access in zip(results[::2], results[1::2], strict=True):
            for mid, raw in items.items():
                memory = MemoryRecord(**json.loads(raw))
                if mid in access:
                    memory.last_access = float(access[mid])
                out.append(memory)
        out.sort(key=lambda m: m.id)
        return out

    async def touch_memories(self, npc: str, player: str, ids: list[int], at: float) -> None:
        """Record the recall time of memories (player's and world facts)."""
        if not ids:
            return
        mine = await self.r.hkeys(_k("mem", npc, player))
        wanted = {str(i) for i in ids}
        async with self.r.pipeline(transaction=False) as pipe:
            for who, keys in ((player, set(mine)), ("", None)):
                chosen = wanted & keys if keys is not None else wanted - set(mine)
                if chosen:
                    pipe.hset(_k("memaccess", npc, who), mapping={i: at for i in chosen})
            await pipe.execute()

    # ---------------------------------------------------------------- NPC state

    async def get_npc_states(self, npc: str, players: list[str]) -> dict[str, dict[str, Any]]:
        """MGET the JSON state documents of ``npc`` for ``players`` (one round trip)."""
        if not players:
            return {}
        raws = await self.r.mget([_k("state", npc, player) for player in players])
        return {
            player: dict(json.loads(raw))
            for player, raw in zip(players, raws, strict=True)
            if raw is not None
        }

    async def put_npc_state(self, npc: str, player: str, data: dict[str, Any]) -> None:
        """SET the document and index the player (for ``memory.forget``) in one MULTI."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.set(_k("state", npc, player), json.dumps(data, separators=(",", ":")))
            if player:
                pipe.sadd(_k("player", player, "npcs"), npc)
            await pipe.execute()

    # ---------------------------------------------------------------- erasure

    async def forget(self, player: str, npc: str | None = None) -> int:
        """Delete the player's keys for one NPC or every NPC that holds data about them."""
        if not player:
            return 0
        index = _k("player", player, "npcs")
        npcs = [npc] if npc is not None else [str(n) for n in await self.r.smembers(index)]
        removed = 0
        for name in npcs:
            async with self.r.pipeline(transaction=True) as pipe:
                pipe.llen(_k("turns", name, player))
                pipe.hlen(_k("mem", name, player))
                pipe.exists(_k("state", name, player))
                pipe.delete(
                    _k("turns", name, player),
                    _k("mem", name, player),
                    _k("memaccess", name, player),
                    _k("wm", name, player),
                    _k("state", name, player),
                )
                pipe.srem(index, name)
                results = await pipe.execute()
            removed += int(results[0]) + int(results[1]) + int(results[2])
        return removed


def now() -> float:
    """Wall-clock seconds (what every store timestamp uses)."""
    return time.time()
