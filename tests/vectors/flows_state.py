"""Flow vectors for NPC state: ``npc.state`` answered by ``state``, a threshold ``state`` frame
that belongs to no request, and a ``world.event`` whose reactions stream under their own ids
before the ``ok`` that ends it (``make_flows.py`` holds the format)."""

from __future__ import annotations

from typing import Any

# imported by make_flows.py, which puts this folder on the import path
from flow_frames import RULE_EVENTS, RULE_STATE, delta, end, start

_STATE = {
    "npc": "guard",
    "player": "p1",
    "mood": "angry",
    "intensity": 0.6,
    "relationship": {"trust": -55.5, "affection": -10.25, "familiarity": 12.5},
}
_CROSSED = [
    {"name": "hostile", "key": "trust", "direction": "entered", "value": -55.5, "below": -50}
]

STATE_FLOWS: list[dict[str, Any]] = [
    {
        "name": "npc.state is answered by state; a crossing state frame is no request's",
        "rule": RULE_STATE,
        "requests": {"20": "npc.state", "t-1": "say"},
        "frames": [
            {"type": "state", **_STATE, "reason": "judgement", "crossed": _CROSSED},
            {"type": "state", "id": 20, **_STATE, "reason": "nudge"},
            start("t-1", npc="guard"),
            end(
                "t-1",
                "Halt.",
                npc="guard",
                state={k: _STATE[k] for k in ("mood", "intensity", "relationship")},
            ),
        ],
        "expect": {
            "20": {"ends": "answer", "at": 1, "answer_type": "state"},
            "t-1": {"ends": "reply", "at": 3, "finish": "stop", "text": "Halt.", "deltas": ""},
        },
        "stray": [0],
    },
    {
        "name": "world.event: reactions under their own ids, then ok",
        "rule": RULE_EVENTS,
        "requests": {"21": "world.event"},
        "frames": [
            start("21/0", npc="guard", parent=21),
            delta("21/0", 0, "Thief! Stop right there!"),
            end("21/0", "Thief! Stop right there!", npc="guard", parent=21),
            {
                "type": "ok",
                "id": 21,
                "npcs": ["guard", "merchant"],
                "reactions": [{"id": "21/0", "npc": "guard", "finish": "stop"}],
            },
        ],
        "expect": {
            "21": {"ends": "answer", "at": 3, "answer_type": "ok"},
            "21/0": {
                "ends": "reply",
                "at": 2,
                "finish": "stop",
                "text": "Thief! Stop right there!",
                "deltas": "Thief! Stop right there!",
            },
        },
        "stray": [],
    },
]
