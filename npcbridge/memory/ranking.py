"""Recall ranking, after Generative Agents (Park et al., 2023).

``score = w_recency * recency + w_importance * importance + w_relevance * relevance`` where

* recency = ``decay_per_hour ** hours_since_last_recall``: exponential decay, already in
  (0, 1] (1 = recalled just now);
* importance = ``importance / 10`` (importance is 1..10);
* relevance = similarity of the memory to the query (lexical by default, embeddings through the
  ``npcbridge_memory_relevance`` hook), min-max normalised over the candidates (the most relevant
  scores 1, the least 0; all equal -> all 0, so it cannot change the order).

The paper min-max normalises recency too. We do not: over candidates stored seconds apart it
would turn those seconds into a full point of score, as much as the best relevance match.
Ties keep the newer memory first. All weights default to 1, as in the paper.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..stores.base import MemoryRecord

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be but by did do does for from had has have he her his i if in is it "
    "its me my no not of on or our she so that the their them then there they this to was we "
    "were what when where which who will with you your".split()
)


def words(text: str) -> set[str]:
    """Lower-cased content words of ``text`` (stop words and single letters dropped)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS}


def lexical_relevance(query: str, texts: Sequence[str]) -> list[float]:
    """Cosine similarity of word sets: ``|Q & M| / sqrt(|Q| * |M|)``, 0 when either is empty."""
    q = words(query)
    out = []
    for text in texts:
        m = words(text)
        out.append(len(q & m) / math.sqrt(len(q) * len(m)) if q and m else 0.0)
    return out


def min_max(values: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; all-equal values become 0."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [0.0] * len(values)
    return [(v - lo) / (hi - lo) for v in values]


@dataclass(frozen=True)
class Weights:
    """The three weights and the recency decay."""

    recency: float = 1.0
    importance: float = 1.0
    relevance: float = 1.0
    decay_per_hour: float = 0.995


@dataclass
class Scored:
    """A memory with its score and the three normalised components."""

    memory: MemoryRecord
    score: float
    recency: float
    importance: float
    relevance: float


def rank(
    memories: Sequence[MemoryRecord],
    now: float,
    relevance: Sequence[float] | None = None,
    weights: Weights = Weights(),  # noqa: B008 - frozen dataclass
) -> list[Scored]:
    """Score ``memories`` at time ``now`` (unix seconds); best first.

    ``relevance`` holds one raw similarity per memory (any scale; it is normalised), or None
    when there is no query.
    """
    if not memories:
        return []
    recency = [weights.decay_per_hour ** (max(0.0, now - m.last_access) / 3600.0) for m in memories]
    rel = min_max(list(relevance)) if relevance is not None else [0.0] * len(memories)
    if len(rel) != len(memories):
        raise ValueError("relevance must have one value per memory")
    scored = [
        Scored(
            memory=m,
            score=weights.recency * r
            + weights.importance * (m.importance / 10)
            + weights.relevance * v,
            recency=r,
            importance=m.importance / 10,
            relevance=v,
        )
        for m, r, v in zip(memories, recency, rel, strict=True)
    ]
    scored.sort(key=lambda s: (-s.score, -s.memory.id))
    return scored
