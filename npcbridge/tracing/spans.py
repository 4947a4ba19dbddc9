"""One finished turn as a ``chat {model}`` span (OpenTelemetry GenAI semantic conventions),
made after the turn from its timings: nothing runs while the reply streams."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

if TYPE_CHECKING:
    from ..pipeline.turn import Turn, TurnResult


def _ns(ms: float) -> int:
    return int(ms * 1_000_000)


def span_attributes(turn: Turn, result: TurnResult, provider: str, content: bool) -> dict[str, Any]:
    """The span's attributes: ``gen_ai.*`` where the conventions name one, ``npcbridge.*``
    for the rest; message content and the player only when ``content``."""
    requested = turn.model.id if turn.model is not None else result.model
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": requested,
        "gen_ai.response.model": result.model,
        "gen_ai.response.finish_reasons": [result.finish],
        "gen_ai.usage.input_tokens": result.usage.input_tokens,
        "gen_ai.usage.output_tokens": result.usage.output_tokens,
        "gen_ai.conversation.id": turn.session_id,
        "gen_ai.response.time_to_first_chunk": result.ttft_ms / 1000,
        "npcbridge.npc": turn.npc,
        "npcbridge.kind": turn.kind,
        "npcbridge.urgency": turn.urgency,
        "npcbridge.cost_usd": result.cost_usd,
        "npcbridge.queue_ms": result.queue_ms,
        "npcbridge.cached": result.cached,
        "npcbridge.usage_estimated": result.usage.estimated,
    }
    if turn.max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = turn.max_tokens
    if turn.temperature is not None:
        attributes["gen_ai.request.temperature"] = float(turn.temperature)
    if turn.model_rule:
        attributes["npcbridge.model_rule"] = turn.model_rule
    if result.error_code:
        attributes["error.type"] = result.error_code
    if content:
        attributes["npcbridge.player"] = turn.player
        attributes["gen_ai.system_instructions"] = json.dumps(
            [{"type": "text", "content": part} for part in turn.system_parts]
        )
        attributes["gen_ai.input.messages"] = json.dumps(
            [
                {"role": m.get("role"), "parts": [{"type": "text", "content": m.get("content")}]}
                for m in turn.messages
                if m.get("role") != "system"
            ]
        )
        attributes["gen_ai.output.messages"] = json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": result.text}],
                    "finish_reason": result.finish,
                }
            ]
        )
    return attributes


def record_turn(
    tracer: Tracer, turn: Turn, result: TurnResult, provider: str, content: bool
) -> None:
    """Emit the span of a turn that just ended: it starts when the request arrived and lasts
    ``total_ms``; the first chunk and every retry or fallback are span events."""
    end = time.time_ns()
    start = end - _ns(result.total_ms)
    requested = turn.model.id if turn.model is not None else result.model
    span = tracer.start_span(
        f"chat {requested}",
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes=span_attributes(turn, result, provider, content),
    )
    if result.ttft_ms:
        span.add_event("gen_ai.first_chunk", timestamp=start + _ns(result.ttft_ms))
    for step in turn.upstream_steps:
        if step.outcome != "ok":
            span.add_event(
                f"npcbridge.{step.outcome}",
                {"gen_ai.request.model": step.model, "error.type": step.reason},
            )
    if result.error_code:
        span.set_status(Status(StatusCode.ERROR, result.error_code))
    span.end(end_time=end)
