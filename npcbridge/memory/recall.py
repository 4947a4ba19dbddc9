"""What an NPC recalls: long-term memories ranked for a query and cut to a token budget."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..stores.base import MemoryRecord
from .ranking import Scored, Weights, lexical_relevance, rank
from .settings import MemorySettings
from .tokens import MESSAGE_OVERHEAD, estimate_tokens

if TYPE_CHECKING:
    from ..plugin.api import PluginAPI

log = logging.getLogger("npcbridge.memory")


def weights(settings: MemorySettings) -> Weights:
    """The ranking weights of ``settings``."""
    return Weights(
        recency=settings.recency_weight,
        importance=settings.importance_weight,
        relevance=settings.relevance_weight,
        decay_per_hour=settings.decay_per_hour,
    )


async def relevance(api: PluginAPI, query: str, texts: Sequence[str]) -> list[float] | None:
    """Relevance of each text to ``query``: the first plugin answering
    ``npcbridge_memory_relevance`` (embeddings), else lexical overlap. None without a query."""
    if not query.strip() or not texts:
        return None
    try:
        answer = await api.call(
            "npcbridge_memory_relevance", query=query, texts=list(texts), api=api
        )
        if answer is not None:
            scores = [float(x) for x in answer]
            if len(scores) != len(texts):
                raise ValueError("npcbridge_memory_relevance must return one score per text")
            return scores
    except Exception:
        log.warning("a relevance plugin failed; using lexical relevance", exc_info=True)
    return lexical_relevance(query, texts)


async def ranked(
    api: PluginAPI, settings: MemorySettings, memories: list[MemoryRecord], query: str, now: float
) -> list[Scored]:
    """``memories`` ranked for ``query`` at ``now``, best first."""
    rel = await relevance(api, query, [m.text for m in memories])
    return rank(memories, now, rel, weights(settings))


def within_budget(scored: Sequence[Scored], limit: int, tokens: int) -> list[Scored]:
    """The best memories, at most ``limit`` of them and ``tokens`` estimated tokens in all
    (a memory too long for what is left is skipped; shorter ones after it may still fit)."""
    chosen: list[Scored] = []
    used = MESSAGE_OVERHEAD
    for item in scored:
        if len(chosen) >= limit:
            break
        cost = estimate_tokens(item.memory.text) + 2
        if used + cost > tokens:
            continue
        chosen.append(item)
        used += cost
    return chosen


def memory_message(npc_name: str, player: str, chosen: Sequence[Scored]) -> dict[str, Any]:
    """The system message that puts recalled memories into the prompt."""
    lines = [f"What {npc_name} remembers (long-term memory; the player is {player}):"]
    lines.extend(f"- {item.memory.text}" for item in chosen)
    return {"role": "system", "content": "\n".join(lines)}
