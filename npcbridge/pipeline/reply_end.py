"""The ``reply.end`` frame of a finished turn (before the ``npcbridge_reply_fields`` hooks add
theirs)."""

from __future__ import annotations

from typing import Any

from .turn import Turn, TurnResult


def end_frame(turn: Turn, result: TurnResult) -> dict[str, Any]:
    """The ``reply.end`` frame for a finished turn."""
    frame: dict[str, Any] = {
        "type": "reply.end",
        "id": turn.request_id,
        "npc": turn.npc,
        "text": result.text,
        "finish": result.finish,
        "model": result.model,
        "usage": {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
            **({"estimated": True} if result.usage.estimated else {}),
        },
        "cost_usd": float(result.cost_usd),
        "timing": {
            "queue_ms": float(result.queue_ms),
            "ttft_ms": float(result.ttft_ms),
            "total_ms": float(result.total_ms),
        },
    }
    if result.text != result.streamed_text:
        frame["rewritten"] = True
    if turn.emotes:
        frame["emotes"] = list(turn.emotes)
    if turn.actions:
        frame["actions"] = list(turn.actions)
    if turn.rejected_actions:
        frame["rejected_actions"] = list(turn.rejected_actions)
    if result.cached:
        frame["cached"] = True
    return frame
