"""Vectors of NPC state (docs/state.md): ``npc.state``, ``state``, ``world.event``, and the
``say``/``reply.end``/``ok`` forms that carry state. ``make_vectors.py`` writes them with the
others (the kinds into ``MESSAGES``, the further examples into ``VARIANTS``)."""

from __future__ import annotations

from typing import Any

#: one message per new kind
MESSAGES: list[dict[str, Any]] = [
    {
        "type": "npc.state",
        "id": 20,
        "op": "nudge",
        "npc": "guard",
        "player": "p1",
        "values": {"trust": -15, "mood": "angry", "intensity": 0.4},
    },
    {
        "type": "state",
        "id": 20,
        "npc": "guard",
        "player": "p1",
        "mood": "angry",
        "intensity": 0.4,
        "relationship": {"trust": -5.5, "affection": 0.25, "familiarity": 12.5},
        "reason": "nudge",
    },
    {
        "type": "world.event",
        "id": 21,
        "text": "p1 stole an apple from the stall",
        "importance": 7,
        "npcs": ["guard", "merchant"],
        "witnesses": ["guard"],
        "player": "p1",
        "effects": {"trust": -30, "mood": "angry", "intensity": 0.6},
        "react": True,
        "urgency": "realtime",
    },
]

#: further examples of kinds (their own files, listed under ``variants``)
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    (
        "npc.state-watch",
        {
            "type": "npc.state",
            "id": 22,
            "op": "watch",
            "npc": "guard",
            "player": "p1",
            "watch": [
                {"key": "trust", "below": -50, "name": "hostile"},
                {"key": "mood"},
            ],
        },
    ),
    (
        "state-watch",
        {
            "type": "state",
            "id": 22,
            "npc": "guard",
            "player": "p1",
            "mood": "happy",
            "intensity": 0.25,
            "relationship": {"trust": 10.5, "affection": 0.25, "familiarity": 2.5},
            "reason": "watch",
            "watching": ["hostile", "mood"],
        },
    ),
    (
        "state-crossed",
        {
            "type": "state",
            "npc": "guard",
            "player": "p1",
            "mood": "angry",
            "intensity": 0.6,
            "relationship": {"trust": -55.5, "affection": -10.25, "familiarity": 12.5},
            "reason": "judgement",
            "crossed": [
                {
                    "name": "hostile",
                    "key": "trust",
                    "direction": "entered",
                    "value": -55.5,
                    "below": -50,
                },
                {"name": "mood", "key": "mood", "direction": "changed", "value": "angry"},
            ],
        },
    ),
    (
        "say-effects",
        {
            "type": "say",
            "id": "t-9",
            "npc": "guard",
            "player": "p1",
            "text": "Here, take this gold for your trouble.",
            "urgency": "normal",
            "stream": True,
            "effects": {"trust": 5, "affection": 10},
        },
    ),
    (
        "reply.end-state",
        {
            "type": "reply.end",
            "id": "t-9",
            "npc": "guard",
            "text": "Hm. That is generous of you.",
            "finish": "stop",
            "model": "llama-3.1-8b-instant",
            "usage": {"input_tokens": 240, "output_tokens": 9},
            "cost_usd": 1.278e-05,
            "timing": {"queue_ms": 0.3, "ttft_ms": 58.0, "total_ms": 80.5},
            "state": {
                "mood": "happy",
                "intensity": 0.2,
                "relationship": {"trust": 0.5, "affection": 10.25, "familiarity": 13.5},
            },
        },
    ),
    (
        "ok-world.event",
        {
            "type": "ok",
            "id": 21,
            "npcs": ["guard", "merchant"],
            "reactions": [{"id": "21/0", "npc": "guard", "finish": "stop"}],
        },
    ),
    (
        "npc.define-state",
        {
            "type": "npc.define",
            "id": 23,
            "npc": "guard",
            "persona": {
                "name": "Hilde",
                "description": "A town guard at the market gate.",
                "knowledge": [],
                "examples": [],
                "actions": [
                    {
                        "name": "arrest",
                        "description": "Arrest the player.",
                        "parameters": {"type": "object", "properties": {}},
                    }
                ],
                "state": {
                    "mood": "neutral",
                    "intensity": 0.25,
                    "trust": 10,
                    "affection": 0,
                    "familiarity": 0,
                    "volatility": 1.5,
                    "mood_half_life_s": 300,
                    "on_action": {"arrest": {"trust": -20, "mood": "angry"}},
                },
            },
        },
    ),
]
