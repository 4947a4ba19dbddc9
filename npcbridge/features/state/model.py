"""What an NPC's state is and how it moves (pure functions, no I/O).

An NPC that declares ``persona.state`` keeps two kinds of value:

* its **mood**, shared by every player: one of :data:`~npcbridge.protocol.messages.MOODS` with
  an intensity 0..1 that halves every ``mood_half_life_s`` seconds; once it has faded below
  :data:`FADED` the NPC is back in its resting mood (``persona.state.mood``) at intensity 0;
* its **relationship** to each player: ``trust`` and ``affection`` (-100..100) and
  ``familiarity`` (0..100), starting at the persona's values.

A state is handled as one flat map of values (``mood``, ``intensity`` and, with a player,
``trust``, ``affection``, ``familiarity``); :func:`view` is its wire form (``reply.end.state``,
the ``state`` frame).
"""

from __future__ import annotations

from typing import Any

from ...protocol.messages import RELATIONSHIP_RANGES, StateSpec

#: below this intensity a felt mood has faded into the resting mood
FADED = 0.05
#: the keys of a relationship, in wire order
RELATIONSHIP_KEYS = tuple(RELATIONSHIP_RANGES)

Values = dict[str, Any]


def clamp(key: str, value: float) -> float:
    """``value`` held inside the documented range of ``key`` (intensity: 0..1)."""
    low, high = RELATIONSHIP_RANGES.get(key, (0.0, 1.0))
    return round(min(high, max(low, float(value))), 4)


def decayed(
    spec: StateSpec, stored: dict[str, Any] | None, half_life_s: float, now: float
) -> tuple[str, float]:
    """The mood and intensity at ``now`` of a mood stored at ``stored["at"]``."""
    if stored is None:
        return spec.mood, float(spec.intensity)
    elapsed = max(0.0, now - float(stored.get("at", now)))
    intensity = float(stored.get("intensity", 0.0)) * 0.5 ** (elapsed / half_life_s)
    if intensity < FADED:
        return spec.mood, 0.0
    return str(stored.get("mood", spec.mood)), round(intensity, 4)


def relationship(spec: StateSpec, stored: dict[str, Any] | None) -> Values:
    """The relationship values of a stored document, or the persona's starting values."""
    base = {key: float(getattr(spec, key)) for key in RELATIONSHIP_KEYS}
    if stored is not None:
        base.update({k: float(stored[k]) for k in RELATIONSHIP_KEYS if k in stored})
    return base


def feel(mood: str, intensity: float, felt: str, amount: float) -> tuple[str, float]:
    """The mood after the NPC feels ``felt`` with strength ``amount`` (-1..1).

    The same mood grows (or, with a negative amount, weakens); another mood takes over when it
    is felt at least as strongly as the current one is, else it only weakens the current one:
    a strong anger is not wiped out by a little joy."""
    if felt == mood:
        return mood, clamp("intensity", intensity + amount)
    if amount >= intensity:
        return felt, clamp("intensity", amount)
    return mood, clamp("intensity", intensity - max(0.0, amount))


def changed(
    values: Values, change: dict[str, Any], *, scale: float = 1.0, add: bool = True
) -> Values:
    """``values`` after ``change`` (a ``StateChange`` map): amounts added (times ``scale``),
    or with ``add=False`` new values set; a relationship key the values lack (no player) is
    ignored, and every value is held in its range."""
    out = dict(values)
    for key in RELATIONSHIP_KEYS:
        if key in change and change[key] is not None and key in out:
            amount = float(change[key])
            out[key] = clamp(key, out[key] + amount * scale if add else amount)
    mood, intensity = change.get("mood"), change.get("intensity")
    if add:
        if mood is not None:
            amount = float(intensity) if intensity is not None else 0.3
            out["mood"], out["intensity"] = feel(
                out["mood"], out["intensity"], mood, amount * scale
            )
        elif intensity is not None:
            out["intensity"] = clamp("intensity", out["intensity"] + float(intensity) * scale)
    else:
        if mood is not None:
            out["mood"] = mood
        if intensity is not None:
            out["intensity"] = clamp("intensity", float(intensity))
    return out


def view(values: Values) -> dict[str, Any]:
    """The wire form: ``{mood, intensity, relationship?}``."""
    out: dict[str, Any] = {"mood": values["mood"], "intensity": float(values["intensity"])}
    if "trust" in values:
        out["relationship"] = {key: float(values[key]) for key in RELATIONSHIP_KEYS}
    return out
