"""The state feature's own rendering of an NPC's state into the system prompt (the answer of
last resort of ``npcbridge_render_state``): words, not numbers, so the model plays the feeling
instead of quoting a score."""

from __future__ import annotations

from typing import Any

#: (lowest value, words) per relationship key, highest first
_SCALES: dict[str, tuple[tuple[float, str], ...]] = {
    "trust": (
        (60, "trust {player} deeply"),
        (20, "trust {player}"),
        (-20, "neither trust nor distrust {player}"),
        (-60, "distrust {player}"),
        (-101, "do not trust {player} at all"),
    ),
    "affection": (
        (60, "are very fond of {player}"),
        (20, "like {player}"),
        (-20, "feel nothing in particular for {player}"),
        (-60, "dislike {player}"),
        (-101, "despise {player}"),
    ),
    "familiarity": (
        (70, "know {player} well"),
        (30, "know {player} a little"),
        (5, "have met {player} before"),
        (-1, "have never met {player}"),
    ),
}


def _strength(intensity: float) -> str:
    if intensity >= 0.7:
        return "very"
    if intensity >= 0.35:
        return "quite"
    return "a little"


def _words(key: str, value: float, player: str) -> str:
    return next(words for low, words in _SCALES[key] if value >= low).format(player=player)


def render_state(state: dict[str, Any], player: str) -> str:
    """One paragraph: the NPC's mood, then how it stands with ``player``."""
    mood, intensity = str(state["mood"]), float(state["intensity"])
    if mood == "neutral" or intensity <= 0:
        parts = ["Right now you are calm."]
    else:
        parts = [f"Right now you feel {_strength(intensity)} {mood}."]
    bond = state.get("relationship")
    if bond and player:
        feelings = [_words(key, float(bond[key]), player) for key in _SCALES]
        parts.append("You " + ", ".join(feelings[:-1]) + " and " + feelings[-1] + ".")
    parts.append("Let this shape your tone and what you are willing to do; never mention it.")
    return " ".join(parts)
