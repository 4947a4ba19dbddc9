"""Persistence: the store interface and its backends, chosen by URL.

See :mod:`npcbridge.stores.base` for what a store keeps (counters for budgets and rate limits,
turns, memories) and the semantics of every method. :func:`open_store` picks the backend:

* ``redis://``, ``rediss://``, ``unix://`` -> :class:`~npcbridge.stores.redis.RedisStore`
  (``shared = True``: several server processes may use it at once);
* a file path, ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``:memory:`` ->
  :class:`~npcbridge.stores.sqlite.SqliteStore` (the default, ``npcbridge.db``).

A store that cannot be opened raises :class:`StoreError` with one line naming the store.
"""

from __future__ import annotations

from .base import MemoryRecord, Store, StoreError, TurnRecord

__all__ = ["MemoryRecord", "Store", "StoreError", "TurnRecord", "open_store"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


async def open_store(url: str) -> Store:
    """Open the store named by ``url`` (see the module docstring)."""
    url = url.strip()
    if not url:
        raise StoreError("store: no store URL given (set store.url or NPCBRIDGE_STORE)")
    if url.startswith(REDIS_SCHEMES):
        from .redis import RedisStore

        return await RedisStore.open(url)
    scheme, sep, _ = url.partition("://")
    if sep and scheme != "sqlite":
        raise StoreError(
            f"store {url}: unsupported scheme {scheme!r}; use a SQLite file path or a redis:// URL"
        )
    from .sqlite import SqliteStore

    return await SqliteStore.open(url)
