"""How one chat request will be answered: the :class:`Plan` built from the request and its reply,
and the usage it reports."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .replies import Reply, ToolCall, count_prompt_tokens, tokenize

if TYPE_CHECKING:
    from .server import FakeUpstream


@dataclass
class Plan:
    """Everything the response writers need to answer one request."""

    model: str
    tokens: list[str]
    tool_calls: list[ToolCall]
    finish: str
    status: int
    retry_after: float | None
    error_message: str | None
    headers: dict[str, str]
    cut_after: int | None
    stall_s: float
    ttft_s: float
    tokens_per_s: float
    prompt_tokens: int
    usage_override: Mapping[str, int] | None
    stream_error: dict[str, Any] | None
    garbage: str | None = None
    groq_error: str | dict[str, Any] | None = None
    #: the request's headers when the reply echoes them
    echo: dict[str, str] | None = None


def stream_error_object(error: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The in-stream error event's object for ``Reply.stream_error`` (a message or an object)."""
    if error is None:
        return None
    if isinstance(error, Mapping):
        return dict(error)
    return {
        "message": error or "tool call validation failed",
        "type": "invalid_request_error",
        "code": "tool_use_failed",
        "status_code": 400,
    }


def echoed(message: str, echo: Mapping[str, str] | None) -> str:
    """``message`` followed by the request's headers, as a header-echoing upstream writes it."""
    if not echo:
        return message
    return f"{message} request headers: {json.dumps(dict(echo))}"


def make_plan(fake: FakeUpstream, body: Mapping[str, Any], reply: Reply) -> Plan:
    """The plan for answering ``body`` with ``reply`` under the fake's current knobs."""
    if reply.json is not None:
        text = json.dumps(reply.json)
    elif reply.text is not None:
        text = reply.text
    elif reply.tool_calls:
        text = ""
    else:
        generated = fake.reply_fn(body)
        if isinstance(generated, Reply):
            text = generated.text or ""
        else:
            text = generated
    tokens = tokenize(text, fake.chars_per_token)
    tool_calls = [
        tc if isinstance(tc, ToolCall) else ToolCall(**dict(tc)) for tc in (reply.tool_calls or [])
    ]
    finish = "tool_calls" if tool_calls else "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit >= 0 and len(tokens) > limit:
        tokens = tokens[:limit]
        tool_calls = []
        finish = "length"
    if reply.finish is not None:
        finish = reply.finish
    ttft_ms = fake.ttft_ms if reply.ttft_ms is None else reply.ttft_ms
    tps = fake.tokens_per_s if reply.tokens_per_s is None else reply.tokens_per_s
    return Plan(
        model=str(body.get("model", "")),
        tokens=tokens,
        tool_calls=tool_calls,
        finish=finish,
        status=reply.status,
        retry_after=reply.retry_after,
        error_message=reply.error_message,
        headers=dict(reply.headers or {}),
        cut_after=reply.cut_after_chunks,
        stall_s=reply.stall_s,
        ttft_s=max(0.0, ttft_ms) / 1000.0,
        tokens_per_s=max(0.0, tps),
        prompt_tokens=count_prompt_tokens(body.get("messages") or []),
        usage_override=reply.usage,
        stream_error=stream_error_object(reply.stream_error),
        garbage=reply.garbage,
        groq_error=(
            dict(reply.groq_error) if isinstance(reply.groq_error, Mapping) else reply.groq_error
        ),
    )


def usage_of(plan: Plan, completion_tokens: int, completion_time: float) -> dict[str, Any]:
    """Groq's usage object for a reply of ``completion_tokens`` generated in that time."""
    prompt = plan.prompt_tokens
    completion = completion_tokens
    total: int | None = None
    if plan.usage_override:
        prompt = int(plan.usage_override.get("prompt_tokens", prompt))
        completion = int(plan.usage_override.get("completion_tokens", completion))
        total = plan.usage_override.get("total_tokens")
    prompt_time = round(plan.ttft_s, 6)
    completion_time = round(completion_time, 6)
    queue_time = 0.000_05
    return {
        "queue_time": queue_time,
        "prompt_tokens": prompt,
        "prompt_time": prompt_time,
        "completion_tokens": completion,
        "completion_time": completion_time,
        "total_tokens": int(total) if total is not None else prompt + completion,
        "total_time": round(queue_time + prompt_time + completion_time, 6),
    }


def tool_pieces(plan: Plan, chars_per_token: int | None) -> list[tuple[int, ToolCall, list[str]]]:
    """``(index, call with an id, argument pieces)`` for each tool call of the plan."""
    out = []
    for index, tc in enumerate(plan.tool_calls):
        if tc.id is None:
            tc = ToolCall(name=tc.name, arguments=tc.arguments, id="call_" + uuid.uuid4().hex[:24])
        pieces = tokenize(tc.arguments_json(), chars_per_token) or [""]
        out.append((index, tc, pieces))
    return out
