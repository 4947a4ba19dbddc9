"""Turn-taking in a group scene: who answers a line.

1. addressed: ``to`` in the request, else the NPC whose name (its id, its persona name or a
   word of that name) appears first in the line;
2. relevance: the NPC whose persona (description, personality, knowledge, ``topics``) shares
   the most content words with the line;
3. who spoke least in this scene (then scene order).

The player's line is always answered (by the best candidate, :func:`choose_first`); a follow-up
by another NPC (:func:`choose_next`) needs that NPC to be addressed in the last reply or to
reach ``min_relevance`` shared words.
"""

from __future__ import annotations

import re

from ...protocol.messages import Persona
from .scene import Scene

_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
STOPWORDS = frozenset(
    """
    about above after again against also been before being below between both could does doing
    down during each from further have having here hers herself himself into itself just more
    most myself once only other ought ours ourselves over same should some such than that their
    theirs them themselves then there these they this those through under until very what when
    where which while whom with would your yours yourself yourselves will shall might must
    well said says tell told know like want need come going gone make made many much even
    """.split()
)


#: words of a name nobody is called by
NAME_FILLERS = frozenset({"the", "of", "von", "van", "der", "and"})


def words(text: str) -> set[str]:
    """Content words of a text: lower-case, four letters or more, no stop words."""
    return {w for w in (m.lower() for m in _WORD.findall(text)) if len(w) >= 4} - STOPWORDS


def name_keys(npc: str, persona: Persona) -> list[str]:
    """The names an NPC answers to."""
    keys = {npc.lower(), persona.name.lower()}
    # "Brom Ironfist" answers to "Brom" and "Ironfist"; "Captain Varn" to "Varn" too
    keys |= {w for w in persona.name.lower().split() if len(w) >= 3 and w not in NAME_FILLERS}
    return sorted(k for k in keys if k)


def mention_at(text: str, key: str) -> int | None:
    """Where ``key`` appears in ``text`` as a whole word (case-insensitive), or None."""
    if not key:
        return None
    if key.isascii():
        match = re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", text, re.IGNORECASE)
        return match.start() if match else None
    at = text.lower().find(key)
    return at if at >= 0 else None


def addressed(text: str, candidates: dict[str, Persona]) -> str | None:
    """The candidate whose name appears first in ``text``."""
    best: tuple[int, int] | None = None
    chosen = None
    for order, (npc, persona) in enumerate(candidates.items()):
        spots = [at for key in name_keys(npc, persona) if (at := mention_at(text, key)) is not None]
        if spots and (best is None or (min(spots), order) < best):
            best, chosen = (min(spots), order), npc
    return chosen


def relevance(text: str, persona: Persona) -> int:
    """Content words ``text`` shares with what the persona is and knows."""
    about = " ".join(
        s
        for s in (
            persona.description,
            persona.personality,
            *persona.knowledge,
            *(persona.topics or []),
        )
        if s
    )
    return len(words(text) & words(about))


def most_relevant(scene: Scene, candidates: dict[str, Persona], text: str) -> tuple[str, int]:
    """The candidate most relevant to ``text`` (ties: who spoke least, then scene order), and
    its relevance."""
    order = {npc: i for i, npc in enumerate(scene.npcs)}
    scores = {npc: relevance(text, persona) for npc, persona in candidates.items()}
    best = min(candidates, key=lambda npc: (-scores[npc], scene.spoken[npc], order[npc]))
    return best, scores[best]


def choose_first(scene: Scene, text: str, to: str | None = None) -> str:
    """Who answers the player: addressed, then relevance, then who spoke least."""
    if to is not None and to in scene.personas:
        return to
    named = addressed(text, scene.personas)
    if named is not None:
        return named
    return most_relevant(scene, scene.personas, text)[0]


def choose_next(scene: Scene, last: str, text: str, min_relevance: int) -> str | None:
    """Who (if anyone) answers the NPC ``last``: addressed in its line, else relevant enough."""
    others = {npc: p for npc, p in scene.personas.items() if npc != last}
    if not others:
        return None
    named = addressed(text, others)
    if named is not None:
        return named
    best, score = most_relevant(scene, others, text)
    return best if score >= min_relevance else None
