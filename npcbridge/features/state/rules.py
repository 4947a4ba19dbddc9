"""Simple rules that judge an exchange or an event without a model (offline mode, and world
events that declare no effects): a few word lists, each moving the state a little.

They are deliberately plain: kind words warm the NPC up, insults and threats cool it down, a
crime makes it angry and distrustful, a danger afraid, a gift or a rescue happy and trusting.
"""

from __future__ import annotations

import re
from typing import Any

#: (words, the change they cause); the first list with a match in the text wins
_EXCHANGE_RULES: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("kill you", "hurt you", "burn your", "you will die", "or else"),
        {"mood": "afraid", "intensity": 0.4, "trust": -6.0, "affection": -4.0},
    ),
    (
        ("idiot", "stupid", "fool", "hate you", "shut up", "liar", "useless", "ugly", "damn you"),
        {"mood": "angry", "intensity": 0.35, "trust": -3.0, "affection": -5.0},
    ),
    (
        ("thank", "please", "friend", "sorry", "kind of you", "well done", "wonderful"),
        {"mood": "happy", "intensity": 0.2, "trust": 1.0, "affection": 3.0},
    ),
)

_EVENT_RULES: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("stole", "steal", "theft", "thief", "robbed", "pickpocket", "lied", "cheated"),
        {"mood": "angry", "intensity": 0.5, "trust": -20.0, "affection": -10.0},
    ),
    (
        ("attack", "killed", "murder", "struck", "stabbed", "assault"),
        {"mood": "afraid", "intensity": 0.6, "trust": -25.0, "affection": -15.0},
    ),
    (
        ("dragon", "fire", "storm", "monster", "bandits", "raid"),
        {"mood": "afraid", "intensity": 0.5},
    ),
    (
        ("saved", "rescued", "gift", "gave", "helped", "healed", "donated", "returned"),
        {"mood": "happy", "intensity": 0.4, "trust": 10.0, "affection": 10.0},
    ),
)


def _words(text: str) -> str:
    return " " + re.sub(r"[^\w']+", " ", text.lower()) + " "


def _first_match(
    text: str, rules: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]
) -> dict[str, Any]:
    flat = _words(text)
    for words, change in rules:
        if any(" " + word in flat for word in words):
            return dict(change)
    return {}


def judge_exchange(player_text: str) -> dict[str, Any]:
    """The change the player's line causes (a ``StateChange`` map of amounts; may be empty)."""
    return _first_match(player_text, _EXCHANGE_RULES)


def judge_event(text: str) -> dict[str, Any]:
    """The change a world event's text causes in a witness (may be empty)."""
    return _first_match(text, _EVENT_RULES)
