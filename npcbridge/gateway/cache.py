"""The response cache: an LRU with a time-to-live and a size bound, for repeatable requests.

A request is repeatable when its temperature is 0, or when the turn (a bark) or the NPC's persona
is marked ``cacheable``. The key is a hash of everything the upstream sees (model, messages,
tools, max_tokens, temperature, extra parameters), so a different conversation history is a
different entry. Only complete text replies are kept (no tool calls, no errors, not cancelled).
A hit is streamed back as the original deltas and costs nothing upstream.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..providers.base import ProviderRequest
from .settings import CacheSettings


@dataclass(frozen=True)
class CachedReply:
    """A reply as it was streamed: its delta texts and how it finished."""

    deltas: tuple[str, ...]
    finish: str
    #: the model that produced it (a fallback model, maybe)
    model: str = ""


def cache_key(request: ProviderRequest) -> str:
    """A stable hash of what the upstream would see for ``request``."""
    payload = {
        "model": request.model,
        "messages": request.messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "tools": request.tools,
        "response_format": request.response_format,
        "params": request.params,
    }
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class ResponseCache:
    """LRU + TTL cache of replies; ``clock`` is injectable for tests."""

    def __init__(self, settings: CacheSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, CachedReply]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> CachedReply | None:
        """The live entry for ``key`` (refreshing its LRU position), or None."""
        item = self.entries.get(key)
        if item is None:
            self.misses += 1
            return None
        expires, reply = item
        if self.clock() >= expires:
            del self.entries[key]
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return reply

    def put(self, key: str, reply: CachedReply) -> bool:
        """Keep ``reply`` (evicting the least recently used beyond the bound); False when it
        is too long to keep."""
        if sum(len(d) for d in reply.deltas) > self.settings.max_reply_chars:
            return False
        self.entries[key] = (self.clock() + self.settings.ttl_s, reply)
        self.entries.move_to_end(key)
        while len(self.entries) > self.settings.max_entries:
            self.entries.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self.entries)
