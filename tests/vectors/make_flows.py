"""The flow vectors (``flows.json``): which server frame ends which request.

Each flow is a sequence of server frames (decoded, as JSON maps, in arrival order) and, for each
request id, how the request must end. Every client routes frames through one small piece of code
(no socket) that a test feeds these flows to. ``make_vectors.py`` writes the file;
``tests/test_vectors.py`` fails when it is stale.

Fields of a flow:

- ``requests``: id -> type of the message the client sent under that id (``say``, ``scene.say``,
  ``memory.query``, ...). JSON keys are strings: a key made of digits only stands for an integer
  id (no flow uses a digits-only string id). In ``frames`` ids keep their JSON type.
- ``frames``: the server frames, in arrival order.
- ``expect``: id -> how the request ends. ``ends`` is ``reply`` (a ``reply.end`` that is the
  request's end: ``text`` = its text, ``deltas`` = the concatenated ``reply.delta`` texts,
  ``finish``), ``error`` (``code``; ``text`` when a ``reply.end`` with finish "error" came
  first), ``answer`` (a single-answer request, or a ``scene.say`` ending with ``scene.done``:
  ``answer_type`` = that frame's type) or ``open`` (still waiting after the last frame; no
  ``at``). ``at`` is the index of the frame that ended it. Scene replies (``reply.start`` with
  ``parent``) are requests the client learns of through their parent; they are listed too.
- ``stray``: indexes of frames routed to no request (an ``error`` that touches no request, a
  frame for an id the client does not wait for); a client reports them through its general
  error callback or log.

The routing rule these flows pin down (docs/protocol.md, "Errors"):

- ``reply.end`` ends a reply unless its finish is "error": then the request waits for the
  ``error`` that follows with the same id, and ends with it (keeping the partial text).
- An ``error`` without ``refused`` for a pending id ends that request.
- An ``error`` with ``refused`` ends the pending request with that id only when ``refused``
  equals the type of the message the client sent under that id and that request has received
  no frame yet; otherwise it is stray.
- A ``reply.start`` whose ``parent`` names a pending ``scene.say`` or ``world.event`` opens a new
  request under its own id; ``scene.done`` ends the ``scene.say``, its ``ok`` the
  ``world.event``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# the flow lists sit beside this file, which make_vectors.py loads by path (not as a package)
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from flow_frames import (  # noqa: E402
    RULE_ANSWERS,
    RULE_REFUSAL,
    RULE_REPLY,
    delta,
    end,
    error,
    start,
)
from flows_refusals import REFUSAL_FLOWS  # noqa: E402
from flows_scenes import SCENE_FLOWS  # noqa: E402
from flows_state import STATE_FLOWS  # noqa: E402
from flows_voice import VOICE_FLOWS  # noqa: E402

#: replies, answers and the errors that end them
REPLY_FLOWS: list[dict[str, Any]] = [
    {
        "name": "plain reply",
        "rule": RULE_REPLY,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            delta("t-1", 0, "Aye"),
            delta("t-1", 1, ", lad."),
            end("t-1", "Aye, lad."),
        ],
        "expect": {
            "t-1": {
                "ends": "reply",
                "at": 3,
                "finish": "stop",
                "text": "Aye, lad.",
                "deltas": "Aye, lad.",
            }
        },
        "stray": [],
    },
    {
        "name": "two interleaved replies and one still open",
        "rule": RULE_REPLY,
        "requests": {"t-1": "say", "t-2": "say", "t-3": "say"},
        "frames": [
            start("t-1"),
            start("t-2", npc="mage"),
            delta("t-2", 0, "No."),
            delta("t-1", 0, "Yes"),
            {"type": "emote", "id": "t-1", "npc": "blacksmith", "emote": "nods"},
            end("t-2", "No.", npc="mage"),
            start("t-3"),
            delta("t-1", 1, ", indeed."),
            end("t-1", "Yes, indeed."),
            delta("t-3", 0, "Hm"),
        ],
        "expect": {
            "t-1": {
                "ends": "reply",
                "at": 8,
                "finish": "stop",
                "text": "Yes, indeed.",
                "deltas": "Yes, indeed.",
            },
            "t-2": {"ends": "reply", "at": 5, "finish": "stop", "text": "No.", "deltas": "No."},
            "t-3": {"ends": "open"},
        },
        "stray": [],
    },
    {
        "name": "integer ids route like string ids",
        "rule": RULE_REPLY,
        "requests": {"7": "say", "t-7": "say"},
        "frames": [
            start(7),
            start("t-7"),
            delta(7, 0, "Seven"),
            end("t-7", "", finish="length"),
            end(7, "Seven"),
        ],
        "expect": {
            "7": {"ends": "reply", "at": 4, "finish": "stop", "text": "Seven", "deltas": "Seven"},
            "t-7": {"ends": "reply", "at": 3, "finish": "length", "text": "", "deltas": ""},
        },
        "stray": [],
    },
    {
        "name": "reply.end alone (stream false)",
        "rule": RULE_REPLY,
        "requests": {"t-1": "say"},
        "frames": [end("t-1", "Aye.")],
        "expect": {
            "t-1": {"ends": "reply", "at": 0, "finish": "stop", "text": "Aye.", "deltas": ""}
        },
        "stray": [],
    },
    {
        "name": "reply.end finish error waits for the late error",
        "rule": RULE_REPLY,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            delta("t-1", 0, "Aye, l"),
            end("t-1", "Aye, l", finish="error"),
            error("t-1", "upstream_error", "the upstream failed; try again", retryable=True),
        ],
        "expect": {"t-1": {"ends": "error", "at": 3, "code": "upstream_error", "text": "Aye, l"}},
        "stray": [],
    },
    {
        "name": "error after reply.start with no deltas",
        "rule": RULE_REPLY,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            error("t-1", "upstream_timeout", "the upstream did not answer in time", retryable=True),
        ],
        "expect": {"t-1": {"ends": "error", "at": 1, "code": "upstream_timeout"}},
        "stray": [],
    },
    {
        "name": "cancel ends the reply with finish cancelled",
        "rule": RULE_REPLY,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            delta("t-1", 0, "Well"),
            end("t-1", "Well", finish="cancelled"),
        ],
        "expect": {
            "t-1": {
                "ends": "reply",
                "at": 2,
                "finish": "cancelled",
                "text": "Well",
                "deltas": "Well",
            }
        },
        "stray": [],
    },
    {
        "name": "single-answer requests",
        "rule": RULE_ANSWERS,
        "requests": {
            "1": "npc.define",
            "2": "memory.add",
            "4": "memory.query",
            "5": "quest.generate",
            "6": "barks.generate",
            "9": "ping",
            "10": "scene.start",
        },
        "frames": [
            {"type": "pong", "id": 9},
            {"type": "ok", "id": 1},
            {
                "type": "memory",
                "id": 4,
                "items": [
                    {
                        "text": "the player stole the sword",
                        "kind": "fact",
                        "importance": 8,
                        "at": 1764000000.5,
                    }
                ],
            },
            {"type": "ok", "id": 2},
            {"type": "barks", "id": 6, "results": [{"npc": "blacksmith", "text": "Blades!"}]},
            {"type": "ok", "id": 10},
            {
                "type": "quest",
                "id": 5,
                "quest": {
                    "title": "The Deep Forge",
                    "description": "Something hammers in the closed mine at night.",
                    "objectives": ["Enter the mine", "Silence the ghost smith"],
                    "rewards": ["250 gold"],
                    "difficulty": "easy",
                },
            },
        ],
        "expect": {
            "1": {"ends": "answer", "at": 1, "answer_type": "ok"},
            "2": {"ends": "answer", "at": 3, "answer_type": "ok"},
            "4": {"ends": "answer", "at": 2, "answer_type": "memory"},
            "5": {"ends": "answer", "at": 6, "answer_type": "quest"},
            "6": {"ends": "answer", "at": 4, "answer_type": "barks"},
            "9": {"ends": "answer", "at": 0, "answer_type": "pong"},
            "10": {"ends": "answer", "at": 5, "answer_type": "ok"},
        },
        "stray": [],
    },
    {
        "name": "single-answer requests ending with an error",
        "rule": RULE_REFUSAL,
        "requests": {"2": "memory.add", "5": "quest.generate"},
        "frames": [
            error(2, "unknown_npc", "npc: no such NPC on this connection", refused="memory.add"),
            error(5, "upstream_error", "the upstream failed; try again", retryable=True),
        ],
        "expect": {
            "2": {"ends": "error", "at": 0, "code": "unknown_npc"},
            "5": {"ends": "error", "at": 1, "code": "upstream_error"},
        },
        "stray": [],
    },
]

FLOWS = REPLY_FLOWS + REFUSAL_FLOWS + SCENE_FLOWS + STATE_FLOWS + VOICE_FLOWS


def _check(flow: dict[str, Any]) -> None:
    """Guard the generator against flows that break the file's own conventions."""
    from npcbridge.protocol import SERVER_MESSAGES
    from npcbridge.protocol.codec import validate

    for key in flow["requests"]:
        assert isinstance(key, str)
    for frame in flow["frames"]:
        validate(frame, SERVER_MESSAGES)  # every frame is a valid server message
        rid = frame.get("id")
        assert not (isinstance(rid, str) and rid.isdigit()), "digits-only string ids are ambiguous"
    ats = [e["at"] for e in flow["expect"].values() if "at" in e]
    assert not set(ats) & set(flow["stray"]), flow["name"]
    assert all(0 <= i < len(flow["frames"]) for i in ats + flow["stray"]), flow["name"]


def document() -> dict[str, Any]:
    """The content of ``flows.json``."""
    for flow in FLOWS:
        _check(flow)
    return {"flows": FLOWS}
