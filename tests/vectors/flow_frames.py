"""Frame builders and rule anchors for the flow vectors (``make_flows.py`` and the flow lists
beside it): a ``reply.start``, ``reply.delta``, ``reply.end`` and ``error`` as JSON maps."""

from __future__ import annotations

from typing import Any

RULE_REPLY = "docs/protocol.md#talking"
RULE_REFUSAL = "docs/protocol.md#errors (refusals)"
RULE_SCENES = "docs/protocol.md#scenes"
RULE_ANSWERS = "docs/protocol.md#errors"
RULE_EVENTS = "docs/protocol.md#world-events"
RULE_STATE = "docs/protocol.md#npc-state"

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


def scene(parent: str) -> dict[str, Any]:
    """The fields a scene reply's ``reply.start`` and ``reply.end`` carry."""
    return {"scene": "tavern", "parent": parent}
