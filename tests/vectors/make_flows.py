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
- A ``reply.start`` whose ``parent`` names a pending ``scene.say`` opens a new request under its
  own id; ``scene.done`` ends the ``scene.say``.
"""

from __future__ import annotations

from typing import Any

RULE_REPLY = "docs/protocol.md#talking"
RULE_REFUSAL = "docs/protocol.md#errors (refusals)"
RULE_SCENES = "docs/protocol.md#scenes"
RULE_ANSWERS = "docs/protocol.md#errors"

_MODEL = "llama-3.1-8b-instant"


def start(rid: str | int, npc: str = "blacksmith", **extra: Any) -> dict[str, Any]:
    """A ``reply.start``."""
    return {"type": "reply.start", "id": rid, "npc": npc, "model": _MODEL, **extra}


def delta(rid: str | int, seq: int, text: str) -> dict[str, Any]:
    """A ``reply.delta``."""
    return {"type": "reply.delta", "id": rid, "seq": seq, "text": text}


def end(
    rid: str | int, text: str, finish: str = "stop", npc: str = "blacksmith", **extra: Any
) -> dict[str, Any]:
    """A ``reply.end`` (with plausible usage, cost and timing)."""
    return {
        "type": "reply.end",
        "id": rid,
        "npc": npc,
        "text": text,
        "finish": finish,
        "model": _MODEL,
        "usage": {"input_tokens": 180, "output_tokens": 6},
        "cost_usd": 9.48e-06,
        "timing": {"queue_ms": 0.2, "ttft_ms": 48.0, "total_ms": 70.5},
        **extra,
    }


def error(
    rid: str | int | None, code: str, message: str, refused: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An ``error``; ``refused`` names the type of the message it refuses."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    frame["retryable"] = extra.pop("retryable", False)
    if rid is not None:
        frame["id"] = rid
    if refused is not None:
        frame["refused"] = refused
    return {**frame, **extra}


def _scene(parent: str) -> dict[str, Any]:
    """The fields a scene reply's ``reply.start`` and ``reply.end`` carry."""
    return {"scene": "tavern", "parent": parent}


FLOWS: list[dict[str, Any]] = [
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
    {
        "name": "refused duplicate say does not end the live reply",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            error("t-1", "bad_request", "id: already in flight", refused="say"),
            delta("t-1", 0, "Hi"),
            end("t-1", "Hi"),
        ],
        "expect": {
            "t-1": {"ends": "reply", "at": 3, "finish": "stop", "text": "Hi", "deltas": "Hi"}
        },
        "stray": [1],
    },
    {
        "name": "refusal of the client's own fresh say ends it with the code",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say", "t-2": "say"},
        "frames": [
            start("t-1"),
            error(
                "t-2",
                "too_many_in_flight",
                "too many requests in flight",
                refused="say",
                retryable=True,
            ),
            end("t-1", "Aye."),
        ],
        "expect": {
            "t-1": {"ends": "reply", "at": 2, "finish": "stop", "text": "Aye.", "deltas": ""},
            "t-2": {"ends": "error", "at": 1, "code": "too_many_in_flight"},
        },
        "stray": [],
    },
    {
        "name": "refused cancel of a request that is not cancellable leaves it waiting",
        "rule": RULE_REFUSAL,
        "requests": {"7": "memory.query"},
        "frames": [
            error(7, "bad_request", "id: this request cannot be cancelled", refused="cancel"),
            {"type": "memory", "id": 7, "items": []},
        ],
        "expect": {"7": {"ends": "answer", "at": 1, "answer_type": "memory"}},
        "stray": [0],
    },
    {
        "name": "refused cancel of a finished reply is stray",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            end("t-1", "Done."),
            error("t-1", "bad_request", "id: no such request in flight", refused="cancel"),
        ],
        "expect": {
            "t-1": {"ends": "reply", "at": 1, "finish": "stop", "text": "Done.", "deltas": ""}
        },
        "stray": [2],
    },
    {
        "name": "connection-level error without id is stray",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            error(None, "bad_request", "a message must be a msgpack map"),
            delta("t-1", 0, "Still here."),
            end("t-1", "Still here."),
            {"type": "pong", "id": 99},
        ],
        "expect": {
            "t-1": {
                "ends": "reply",
                "at": 3,
                "finish": "stop",
                "text": "Still here.",
                "deltas": "Still here.",
            }
        },
        "stray": [1, 4],
    },
    {
        "name": "scene exchange: replies under their own ids, then scene.done",
        "rule": RULE_SCENES,
        "requests": {"s-1": "scene.say"},
        "frames": [
            start("s-1/1", npc="mage", **_scene("s-1")),
            delta("s-1/1", 0, "Haunted? Brom, tell the child."),
            end("s-1/1", "Haunted? Brom, tell the child.", npc="mage", **_scene("s-1")),
            start("s-1/2", **_scene("s-1")),
            delta("s-1/2", 0, "Aye."),
            {"type": "emote", "id": "s-1/2", "npc": "blacksmith", "emote": "shrugs"},
            end("s-1/2", "Aye.", **_scene("s-1")),
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
            start("s-1/1", npc="mage", **_scene("s-1")),
            error(
                "s-1/1",
                "bad_request",
                "id: scene replies are cancelled through their scene.say",
                refused="cancel",
            ),
            delta("s-1/1", 0, "Go on."),
            end("s-1/1", "Go on.", npc="mage", **_scene("s-1")),
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
            start("s-1/1", npc="mage", **_scene("s-1")),
            delta("s-1/1", 0, "The mine"),
            end("s-1/1", "The mine", finish="error", npc="mage", **_scene("s-1")),
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
            start("s-9/1", **_scene("s-9")),
        ],
        "expect": {"s-2": {"ends": "error", "at": 0, "code": "bad_request"}},
        "stray": [1],
    },
]


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
