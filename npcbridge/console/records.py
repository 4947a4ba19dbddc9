"""The inspector's turn records: what went upstream for a turn and what came back, kept in a
bounded ring in this process's memory (nothing of it is written anywhere else)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import asdict
from typing import Any

from ..pipeline.turn import Turn, TurnResult


def turn_record(record_id: int, turn: Turn, result: TurnResult, source: str) -> dict[str, Any]:
    """One finished turn as plain JSON data (``source``: ``console`` or ``game``)."""
    chosen = turn.model.id if turn.model is not None else result.model
    return {
        "id": record_id,
        "at": time.time(),
        "source": source,
        "request_id": str(turn.request_id),
        "kind": turn.kind,
        "npc": turn.npc,
        "player": turn.player,
        "session": turn.session_id,
        "urgency": turn.urgency,
        "prompt": {
            "parts": [asdict(part) for part in turn.prompt_parts],
            "messages": list(turn.messages),
            "tools": list(turn.tools),
            "params": dict(turn.params),
            "max_tokens": turn.max_tokens,
            "temperature": turn.temperature,
        },
        "memories": [asdict(memory) for memory in turn.recalled],
        "model": {
            "chosen": chosen,
            "served": result.model,
            "plugin": turn.model_plugin,
            "rule": turn.model_rule,
            "tier": turn.tier,
        },
        "steps": [asdict(step) for step in turn.upstream_steps],
        "reply": {
            "text": result.text,
            "streamed": result.streamed_text,
            "emotes": list(turn.emotes),
            "actions": list(turn.actions),
            "rejected_actions": list(turn.rejected_actions),
        },
        "finish": result.finish,
        "error_code": result.error_code,
        "cached": result.cached,
        "usage": asdict(result.usage),
        "cost_usd": result.cost_usd,
        "timing": {
            "queue_ms": result.queue_ms,
            "ttft_ms": result.ttft_ms,
            "total_ms": result.total_ms,
        },
    }


SUMMARY_FIELDS = ("id", "at", "source", "request_id", "kind", "npc", "player", "finish")


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The list view of a record: who, when, how it ended, what it cost (no content)."""
    out = {key: record[key] for key in SUMMARY_FIELDS}
    out.update(
        model=record["model"]["served"],
        cost_usd=record["cost_usd"],
        ttft_ms=record["timing"]["ttft_ms"],
        total_ms=record["timing"]["total_ms"],
    )
    return out


class TurnRing:
    """The last ``size`` turn records, numbered from 1 in the order they finished."""

    def __init__(self, size: int) -> None:
        self.records: deque[dict[str, Any]] = deque(maxlen=size)
        self._ids = itertools.count(1)

    def add(self, turn: Turn, result: TurnResult, source: str) -> dict[str, Any]:
        """Record a finished turn (the oldest record goes when the ring is full)."""
        record = turn_record(next(self._ids), turn, result, source)
        self.records.append(record)
        return record

    def since(self, after: int = 0) -> list[dict[str, Any]]:
        """Summaries of the records numbered above ``after``, newest first."""
        return [summary(r) for r in reversed(self.records) if r["id"] > after]

    def get(self, record_id: int) -> dict[str, Any] | None:
        """The whole record, or None once it left the ring."""
        return next((r for r in self.records if r["id"] == record_id), None)
