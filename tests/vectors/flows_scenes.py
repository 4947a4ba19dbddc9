"""Flow vectors for scenes: replies under their own ids learnt through their ``parent``, then
``scene.done`` ending the ``scene.say`` (``make_flows.py`` holds the format)."""

from __future__ import annotations

from typing import Any

# imported by make_flows.py, which puts this folder on the import path
from flow_frames import (
    RULE_REFUSAL,
    RULE_SCENES,
    delta,
    end,
    error,
    scene,
    start,
)

SCENE_FLOWS: list[dict[str, Any]] = [
    {
        "name": "scene exchange: replies under their own ids, then scene.done",
        "rule": RULE_SCENES,
        "requests": {"s-1": "scene.say"},
        "frames": [
            start("s-1/1", npc="mage", **scene("s-1")),
            delta("s-1/1", 0, "Haunted? Brom, tell the child."),
            end("s-1/1", "Haunted? Brom, tell the child.", npc="mage", **scene("s-1")),
            start("s-1/2", **scene("s-1")),
            delta("s-1/2", 0, "Aye."),
            {"type": "emote", "id": "s-1/2", "npc": "blacksmith", "emote": "shrugs"},
            end("s-1/2", "Aye.", **scene("s-1")),
            {
                "type": "scene.done",
                "id": "s-1",
                "scene": "tavern",
                "replies": [
                    {"id": "s-1/1", "npc": "mage", "finish": "stop"},
                    {"id": "s-1/2", "npc": "blacksmith", "finish": "stop"},
                ],
                "stopped": "bound",
            },
        ],
        "expect": {
            "s-1": {"ends": "answer", "at": 7, "answer_type": "scene.done"},
            "s-1/1": {
                "ends": "reply",
                "at": 2,
                "finish": "stop",
                "text": "Haunted? Brom, tell the child.",
                "deltas": "Haunted? Brom, tell the child.",
            },
            "s-1/2": {"ends": "reply", "at": 6, "finish": "stop", "text": "Aye.", "deltas": "Aye."},
        },
        "stray": [],
    },
    {
        "name": "refused cancel naming a scene reply does not end it",
        "rule": RULE_REFUSAL,
        "requests": {"s-1": "scene.say"},
        "frames": [
            start("s-1/1", npc="mage", **scene("s-1")),
            error(
                "s-1/1",
                "bad_request",
                "id: scene replies are cancelled through their scene.say",
                refused="cancel",
            ),
            delta("s-1/1", 0, "Go on."),
            end("s-1/1", "Go on.", npc="mage", **scene("s-1")),
            {
                "type": "scene.done",
                "id": "s-1",
                "scene": "tavern",
                "replies": [{"id": "s-1/1", "npc": "mage", "finish": "stop"}],
                "stopped": "quiet",
            },
        ],
        "expect": {
            "s-1": {"ends": "answer", "at": 4, "answer_type": "scene.done"},
            "s-1/1": {
                "ends": "reply",
                "at": 3,
                "finish": "stop",
                "text": "Go on.",
                "deltas": "Go on.",
            },
        },
        "stray": [1],
    },
    {
        "name": "a failing scene reply ends with its error; the exchange with scene.done",
        "rule": RULE_SCENES,
        "requests": {"s-1": "scene.say"},
        "frames": [
            start("s-1/1", npc="mage", **scene("s-1")),
            delta("s-1/1", 0, "The mine"),
            end("s-1/1", "The mine", finish="error", npc="mage", **scene("s-1")),
            error("s-1/1", "upstream_error", "the upstream failed; try again", retryable=True),
            {
                "type": "scene.done",
                "id": "s-1",
                "scene": "tavern",
                "replies": [{"id": "s-1/1", "npc": "mage", "finish": "error"}],
                "stopped": "error",
            },
        ],
        "expect": {
            "s-1": {"ends": "answer", "at": 4, "answer_type": "scene.done"},
            "s-1/1": {"ends": "error", "at": 3, "code": "upstream_error", "text": "The mine"},
        },
        "stray": [],
    },
    {
        "name": "refused scene.say ends it; a reply.start naming an unknown parent is stray",
        "rule": RULE_REFUSAL,
        "requests": {"s-2": "scene.say"},
        "frames": [
            error("s-2", "bad_request", "scene: no such scene", refused="scene.say"),
            start("s-9/1", **scene("s-9")),
        ],
        "expect": {"s-2": {"ends": "error", "at": 0, "code": "bad_request"}},
        "stray": [1],
    },
]
