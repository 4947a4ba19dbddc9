"""The bodies of a successful answer: the ``chat.completion`` JSON, the paced SSE stream (with its
in-stream errors and cuts), the non-completion garbage bodies, and the benchmark time stamps."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import base_headers, error_response
from .plan import Plan, tool_pieces, usage_of
from .replies import GARBAGE_BODIES, RequestRecord

if TYPE_CHECKING:
    from .server import FakeUpstream


class Cut(Exception):
    """Raised inside a handler after the fake aborted the connection on purpose."""


#: token text that ``stamp_tokens`` replaces with ``T<arrival_ns>.<sent_ns>`` (same width)
STAMP_PLACEHOLDER = "T" + "0" * 19 + "." + "0" * 19
_STAMP_PLACEHOLDER_BYTES = STAMP_PLACEHOLDER.encode()
_STAMP = re.compile(r"T(\d{19})\.(\d{19})")


def parse_stamps(text: str) -> list[tuple[int, int]]:
    """The ``(arrival_ns, sent_ns)`` pairs of the stamped tokens in a piece of reply text."""
    return [(int(a), int(s)) for a, s in _STAMP.findall(text)]


def _stamping_writer(
    response: web.StreamResponse, arrival_ns: int
) -> Callable[[bytes], Awaitable[None]]:
    """``response.write`` that fills in the stamps of the chunks as they are written."""
    arrival = b"T%019d." % arrival_ns

    async def write(data: bytes) -> None:
        stamp = arrival + b"%019d" % time.monotonic_ns()
        await response.write(data.replace(_STAMP_PLACEHOLDER_BYTES, stamp))

    return write


def stamped_reply(words: int) -> Callable[[Mapping[str, Any]], str]:
    """A ``reply_fn`` whose replies are ``words`` tokens of :data:`STAMP_PLACEHOLDER`."""
    text = " ".join([STAMP_PLACEHOLDER] * words) + " "
    return lambda body: text


def cut(request: web.Request) -> None:
    """Abort the request's TCP connection on purpose and raise :class:`Cut`."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise Cut


async def complete(
    fake: FakeUpstream, request: web.Request, plan: Plan, record: RequestRecord
) -> web.Response:
    """The non-streaming answer: one ``chat.completion`` JSON object after the reply's time."""
    content = "".join(plan.tokens)
    pieces = tool_pieces(plan, fake.chars_per_token)
    n_pieces = sum(len(p) for _, _, p in pieces)
    n = len(plan.tokens) + n_pieces
    gen_time = n / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
    if plan.ttft_s + gen_time > 0:
        await asyncio.sleep(plan.ttft_s + gen_time)
    if plan.cut_after is not None:
        cut(request)
    if plan.stream_error is not None:
        record.outcome = "error"
        error_text = str(plan.stream_error.get("message", ""))
        return error_response(fake, 500, error_text, model=plan.model, echo=plan.echo)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if pieces:
        message["tool_calls"] = [
            {
                "id": tc.id,
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments_json()},
            }
            for _, tc, _ in pieces
        ]
    usage = usage_of(plan, n, gen_time)
    payload = {
        "id": "chatcmpl-" + str(uuid.uuid4()),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": plan.finish}
        ],
        "usage": usage,
        "usage_breakdown": None,
        "system_fingerprint": fake.system_fingerprint,
        "x_groq": {"id": "req_" + uuid.uuid4().hex[:26]},
    }
    response = web.json_response(payload, headers=base_headers(fake, plan.headers, plan.echo))
    record.usage = usage
    record.outcome = "completed"
    fake.last_usage = usage
    fake.completed += 1
    return response


async def stream(
    fake: FakeUpstream,
    request: web.Request,
    body: Mapping[str, Any],
    plan: Plan,
    record: RequestRecord,
) -> web.StreamResponse:
    """The streaming answer: Groq's SSE chunks, paced, then the usage and ``[DONE]`` (or the
    in-stream error, or the cut, the plan asks for)."""
    chunk_id = "chatcmpl-" + str(uuid.uuid4())
    groq_id = "req_" + uuid.uuid4().hex[:26]
    created = int(time.time())
    # Common chunk head, without the closing brace: {"id":…,"object":…,"created":…,…
    head = json.dumps(
        {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "system_fingerprint": fake.system_fingerprint,
        },
        separators=(",", ":"),
    )[:-1].encode()
    content_prefix = b"data: " + head + b',"choices":[{"index":0,"delta":{"content":'
    content_suffix = b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def event(obj: Mapping[str, Any]) -> bytes:
        return (
            b"data: " + head + b"," + json.dumps(obj, separators=(",", ":"))[1:].encode()
        ) + b"\n\n"

    def choice(delta: Mapping[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        """One chunk holding one choice (``extra``: top-level fields such as ``x_groq``)."""
        entry = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return event({"choices": [entry], **extra})

    chunks = [content_prefix + json.dumps(t).encode() + content_suffix for t in plan.tokens]
    calls = tool_pieces(plan, fake.chars_per_token)
    for index, tc, pieces in calls:
        first = {
            "index": index,
            "id": tc.id,
            "type": "function",
            "function": {"name": tc.name, "arguments": ""},
        }
        chunks.append(choice({"tool_calls": [first]}))
        for piece in pieces:
            piece_call = {"index": index, "function": {"arguments": piece}}
            chunks.append(choice({"tool_calls": [piece_call]}))
    n_tool_pieces = sum(len(p) for _, _, p in calls)

    response = web.StreamResponse(
        status=200,
        headers=base_headers(
            fake,
            {
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                **plan.headers,
            },
            plan.echo,
        ),
    )
    await response.prepare(request)
    await response.write(choice({"role": "assistant", "content": ""}, x_groq={"id": groq_id}))
    if plan.ttft_s > 0:
        await asyncio.sleep(plan.ttft_s)
    started = time.monotonic()
    limit = len(chunks) if plan.cut_after is None else min(plan.cut_after, len(chunks))
    write = _stamping_writer(response, record.arrival_ns) if fake.stamp_tokens else None
    await write_paced(fake, write or response.write, chunks, limit, plan.tokens_per_s)
    if plan.stream_error is not None:
        await response.write(
            b"data: " + json.dumps({"error": plan.stream_error}).encode() + b"\n\n"
        )
        await response.write_eof()
        record.outcome = "stream_error"
        fake.errors += 1
        return response
    if plan.groq_error is not None:
        await response.write(choice({}, x_groq={"id": groq_id, "error": plan.groq_error}))
        await response.write_eof()
        record.outcome = "stream_error"
        fake.errors += 1
        return response
    if plan.cut_after is not None:
        cut(request)
    completion_time = time.monotonic() - started
    usage = usage_of(plan, len(plan.tokens) + n_tool_pieces, completion_time)
    tail = [choice({}, plan.finish, x_groq={"id": groq_id, "usage": usage})]
    options = body.get("stream_options")
    if isinstance(options, Mapping) and options.get("include_usage"):
        tail.append(event({"choices": [], "usage": usage}))
    tail.append(b"data: [DONE]\n\n")
    await response.write(b"".join(tail))
    record.usage = usage
    fake.last_usage = usage
    await response.write_eof()
    record.outcome = "completed"
    fake.completed += 1
    return response


async def garbage(fake: FakeUpstream, plan: Plan, record: RequestRecord) -> web.Response:
    """A 200 whose body is one of :data:`GARBAGE_BODIES` (after the reply's TTFT)."""
    if plan.ttft_s > 0:
        await asyncio.sleep(plan.ttft_s)
    content_type, body = GARBAGE_BODIES[plan.garbage or "invalid_json"]
    headers = base_headers(fake, {**plan.headers, "content-type": content_type}, plan.echo)
    record.outcome = "garbage"
    return web.Response(status=200, body=body, headers=headers)


async def write_paced(
    fake: FakeUpstream,
    write: Callable[[bytes], Awaitable[None]],
    chunks: list[bytes],
    limit: int,
    tps: float,
) -> None:
    """Write ``chunks[:limit]`` at ``tps`` chunks per second (all at once when 0): the chunks
    due are written together, at most one write per ``fake.write_interval_ms``."""
    if limit <= 0:
        return
    if tps <= 0:
        await write(b"".join(chunks[:limit]))
        return
    interval = 1.0 / tps
    min_sleep = max(0.0, fake.write_interval_ms / 1000.0)
    start = time.monotonic()
    sent = 0
    while sent < limit:
        due = min(limit, int((time.monotonic() - start) * tps) + 1)
        if due > sent:
            await write(chunks[sent] if due == sent + 1 else b"".join(chunks[sent:due]))
            sent = due
        if sent < limit:
            delay = start + sent * interval - time.monotonic()
            await asyncio.sleep(max(delay, min_sleep))
