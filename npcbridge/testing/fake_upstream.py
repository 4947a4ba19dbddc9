"""A fake OpenAI-compatible (Groq-flavoured) chat-completions server for tests and benchmarks.

This is the *one* fake upstream every npcbridge suite uses. It is a real aiohttp HTTP server on
127.0.0.1 (port 0 by default) that answers like Groq's OpenAI-compatible API, so the real
``openai`` SDK (and therefore npcbridge's upstream client) can talk to it unchanged.

Usage::

    async with FakeUpstream(ttft_ms=50, tokens_per_s=750) as fake:
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")
        fake.script(Reply(text="Hello there."), Reply(status=429, retry_after=2))
        ...
        assert fake.disconnects == 0

Command line (benchmarks, non-Python suites)::

    python -m npcbridge.testing.fake_upstream --port 0 --ttft-ms 50 --tokens-per-s 750
    python -m npcbridge.testing.fake_upstream --ttft-ms 50 --tokens-per-s 750 --stamp-words 40

prints one JSON line ``{"base_url": "http://127.0.0.1:PORT/v1", "port": PORT, ...}`` to stdout
and serves until SIGTERM/SIGINT. Run ``--help`` for every flag.

Knobs (constructor keyword arguments, also mutable attributes; changes apply to new requests)
---------------------------------------------------------------------------------------------
``host`` (``"127.0.0.1"``), ``port`` (0 = any free port; the bound port after ``start()``),
``ttft_ms`` (0), ``tokens_per_s`` (0 = unpaced), ``chars_per_token`` (``None`` = word tokens),
``reply_fn`` (``body -> str | Reply``; default :func:`default_reply`), ``rate_limit_headers``
(default :data:`DEFAULT_RATE_LIMIT_HEADERS`; ``{}`` for none), ``models`` (listed by
``/v1/models``), ``known_models_only`` (404 for other models; False), ``strict_groq`` (Groq's
400s, below; True), ``api_key`` (require ``Authorization: Bearer KEY``; ``None`` = accept any),
``slow_tokens_per_s`` (pace of ``[[slow]]``; 10), ``stall_directive_s`` (length of
``[[stall]]``; 60), ``write_interval_ms`` (minimum gap between writes of a paced stream; 10),
``record_requests`` (keep :class:`RequestRecord` objects; True, the CLI default is off),
``system_fingerprint``, ``stamp_tokens`` (False; see *Time stamps* below), ``echo_headers``
(False; see *Hostile upstreams* below).

Endpoints
---------
``POST /v1/chat/completions`` and ``POST /openai/v1/chat/completions``
    Non-streaming (``chat.completion`` JSON) and streaming (``stream: true``) replies.
``GET /v1/models`` and ``GET /openai/v1/models``
    The model list (``models`` knob).
``GET /_fake/stats``
    Counters as JSON (``requests``, ``completed``, ``disconnects``, ``active_streams``,
    ``errors``, ``last_usage``) so non-Python suites can assert on the upstream side.
``POST /_fake/script``
    Body: one reply object or a list of them, with the fields of :class:`Reply` (``tool_calls``
    as ``[{"name", "arguments", "id"?}]``); optional ``?model=NAME``. Appends to the script.
``POST /_fake/reset``
    Clears the script, the records and the counters.

Streaming wire format (as Groq/OpenAI)
--------------------------------------
Server-sent events, each ``data: <chunk json>\\n\\n``; every chunk has ``id`` (``chatcmpl-…``,
the same for the whole stream), ``object: "chat.completion.chunk"``, ``created`` (unix seconds),
``model`` (the requested model), ``system_fingerprint`` and ``choices``.

1. ``delta: {"role": "assistant", "content": ""}`` plus ``x_groq: {"id": "req_…"}``;
   sent as soon as the response headers are sent.
2. After ``ttft_ms``: one chunk per token, ``delta: {"content": TOKEN}``.
3. Tool calls (if any), OpenAI style: first ``delta.tool_calls[0]`` with ``index``, ``id``,
   ``type: "function"`` and ``function: {"name", "arguments": ""}``, then the arguments in
   pieces (``function: {"arguments": PIECE}``, same ``index``).
4. Final chunk: ``delta: {}``, ``finish_reason`` (``"stop"``; ``"length"`` when ``max_tokens`` /
   ``max_completion_tokens`` cut the reply; ``"tool_calls"`` when the reply has tool calls), and
   Groq's ``x_groq: {"id", "usage": {prompt_tokens, completion_tokens, total_tokens, queue_time,
   prompt_time, completion_time, total_time}}``.
5. Only when the request has ``stream_options: {"include_usage": true}``: an OpenAI-style chunk
   with ``choices: []`` and top-level ``usage``.
6. ``data: [DONE]``.

Tokens, pacing and usage
------------------------
* A *token* is one word with the whitespace that follows it (regex ``\\s*\\S+\\s*``; leading
  whitespace sticks to the first word), so joining the tokens gives back the exact text. With
  ``chars_per_token=N`` a token is instead a slice of N characters.
* ``ttft_ms``: delay between the role chunk and the first content chunk.
* ``tokens_per_s``: pace of content/tool chunks (0 = as fast as possible, all in one write).
  Chunks that are due are written together, at most one write per ``write_interval_ms``
  (default 10 ms), so thousands of concurrent streams stay cheap; the average pace is exact.
* Time stamps (benchmarks): with ``stamp_tokens=True``, every :data:`STAMP_PLACEHOLDER` in a
  streamed chunk is replaced, as the chunk is written to the socket, by
  ``T<arrival_ns>.<sent_ns>`` (the same width): when the request reached the server and when
  that chunk was written, ``CLOCK_MONOTONIC`` nanoseconds, which every process on the machine
  shares. A client then separates the upstream's own time from the time spent outside it, per
  request and per token (:func:`parse_stamps`).
* ``prompt_tokens`` = (total characters of the text of all ``messages[].content``) // 4
  + 1 per message (text parts of list contents count; see :func:`count_prompt_tokens`).
* ``completion_tokens`` = number of content chunks sent + number of tool-call argument pieces.
* ``total_tokens`` = the sum. ``Reply(usage={...})`` overrides the counts.
* ``fake.last_usage`` is the usage dict last reported (streaming or not); each
  :class:`RequestRecord` also carries the ``usage`` reported for it (``None`` if none was).

Choosing the reply (first match wins)
-------------------------------------
1. The per-model script queue for the request's model (``fake.script(..., model="x")``).
2. The general script queue (``fake.script(Reply(...))``), FIFO, one reply per request.
3. Directives in the last user message (below).
4. ``reply_fn(body)`` (the default generator): with no directive the reply is
   ``"Well met. You said: <last user text, directives removed, first 20 words>."``
   (``"Well met, traveller."`` when that text is empty). If the request asks for
   ``response_format`` ``json_object`` the content is ``{"reply": <that sentence>}``; for
   ``json_schema`` a minimal instance of the schema (strings = the sentence, numbers 0,
   booleans false, arrays empty, enums their first value).

``max_tokens`` / ``max_completion_tokens`` always apply: the content is cut to that many tokens,
tool calls are dropped and ``finish_reason`` is ``"length"``.

Directives (anywhere in the text of the last user message)
----------------------------------------------------------
``[[reply:TEXT]]``        Reply exactly TEXT (up to the closing ``]]``).
``[[words:N]]``           Reply with N deterministic words.
``[[slow]]``              A 200-word reply paced at 10 tokens/s (``slow_tokens_per_s``).
``[[status:CODE]]``       Answer with that HTTP status and Groq's JSON error body;
                          ``[[status:429]]`` also sends ``retry-after: 1``.
``[[cut:N]]``             Close the TCP connection abruptly after N content chunks (no final
                          chunk, no ``[DONE]``); a non-streaming request is cut before replying.
``[[stall]]``             Wait ``stall_directive_s`` (default 60 s) before sending anything (not
                          even headers). ``[[stall:S]]`` waits S seconds.
``[[tool:NAME:{json}]]``  A tool call to NAME with that JSON object as arguments, preceded by a
                          short spoken text (``"As you wish."``, or the ``[[reply:…]]`` text).
                          Several ``[[tool:…]]`` directives give parallel tool calls.
``[[json:{...}]]``        Content is that JSON value (re-serialised with ``json.dumps``).
``[[stream_error]]``      After the content, send Groq's in-stream error event
                          ``data: {"error": {"message": "tool call validation failed", "type":
                          "invalid_request_error", "code": "tool_use_failed", ...}}`` and end the
                          stream (no ``[DONE]``); ``[[stream_error:MESSAGE]]`` sets the message.
``[[ttft:MS]]``           Time to first token for this reply, in milliseconds.
``[[tps:N]]``             Tokens per second for this reply.
``[[trickle:S]]``         A 1,000-word reply, one token every S seconds (default 1): a stream
                          that never stops for long but takes for ever to end.
``[[garbage:KIND]]``      Answer 200 with a body that is not a completion (:data:`GARBAGE_BODIES`:
                          ``invalid_json``, ``html``, ``empty``, ``binary_sse``,
                          ``sse_invalid_json``), streaming request or not.
``[[echo_headers]]``      This reply echoes the request's headers (see *Hostile upstreams*).
``[[groq_error:MESSAGE]]`` After the content, stop the stream Groq's way: a chunk whose
                          ``x_groq.error`` is MESSAGE (a string), then the end of the body.

Directives combine (e.g. ``[[reply:Hi there friend]] [[cut:2]]``).

Groq behaviour emulated (``strict_groq=True``, the default)
-----------------------------------------------------------
400 ``invalid_request_error`` for ``logprobs``, ``logit_bias``, ``top_logprobs``,
``messages[].name`` and ``n`` other than 1, as Groq does. Always: 400 for a body that is not JSON
or lacks ``model``/``messages``; 401 when ``api_key`` is set and the bearer token differs; 404
``model_not_found`` when ``known_models_only`` is set and the model is not in ``models``.

Error bodies are ``{"error": {"message", "type", "code"}}``; 429 uses type ``"tokens"`` and code
``"rate_limit_exceeded"``. ``rate_limit_headers`` (``x-ratelimit-*``, Groq duration format such
as ``"2m59.56s"``) are added to every chat/models response, errors included; pass ``{}`` to send
none. ``retry-after`` is sent only when the reply has ``retry_after``.

Hostile upstreams
-----------------
Some proxies and servers echo the request's headers, ``Authorization`` included, back to the
client. With ``echo_headers=True`` (every reply) or ``Reply(echo_headers=True)`` /
``[[echo_headers]]`` (one reply) the fake does that everywhere it can: each request header comes
back as a response header ``x-echo-<name>`` (errors, streams, completions, garbage), error bodies'
``message`` ends with ``request headers: {json}``, and so does the ``message`` of an in-stream
error event (``stream_error``, ``groq_error``). ``Reply(garbage=KIND)`` answers 200 with one of
:data:`GARBAGE_BODIES` (content type and bytes), after ``stall_s`` and ``ttft_ms``; its record's
outcome is ``"garbage"``.

Recording
---------
``fake.requests``        list of :class:`RequestRecord` (``body``, ``headers`` lower-cased,
                         ``path``, ``method``, ``time``, ``monotonic``, ``usage``, ``outcome``).
``fake.completed``       replies sent in full (streams that reached ``[DONE]``).
``fake.disconnects``     requests whose client went away before the end (stream or stall).
``fake.active_streams``  streaming responses currently in progress.
``fake.errors``          error-status responses and in-stream errors sent.
``await fake.wait_disconnect(timeout, count=1)`` / ``wait_requests`` / ``wait_completed`` /
``wait_active_streams`` / ``wait_for(predicate, timeout)``.

A disconnect is only seen while the reply is still in progress: for cancellation tests make the
reply outlast the cancel (``[[slow]]``, ``[[stall]]``, ``tokens_per_s``); an unpaced short reply
is usually complete (and counted in ``completed``) before the client can close.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

from ..process import stop_event

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_RATE_LIMIT_HEADERS",
    "GARBAGE_BODIES",
    "FakeUpstream",
    "Reply",
    "RequestRecord",
    "ToolCall",
    "count_prompt_tokens",
    "default_reply",
    "main",
    "parse_directives",
    "tokenize",
]

#: Models listed by ``GET /v1/models`` unless ``models=`` is given.
DEFAULT_MODELS: tuple[str, ...] = (
    "llama-3.1-8b-instant",
    "llama-3.3-70b-versatile",
    "llama-3.1-70b-versatile",
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
)

#: Groq-style rate-limit headers sent on every response unless ``rate_limit_headers=`` is given.
DEFAULT_RATE_LIMIT_HEADERS: dict[str, str] = {
    "x-ratelimit-limit-requests": "14400",
    "x-ratelimit-limit-tokens": "6000",
    "x-ratelimit-remaining-requests": "14399",
    "x-ratelimit-remaining-tokens": "5990",
    "x-ratelimit-reset-requests": "6s",
    "x-ratelimit-reset-tokens": "100ms",
}

#: 200 answers that are not a completion, by name: (content type, body)
GARBAGE_BODIES: dict[str, tuple[str, bytes]] = {
    "invalid_json": ("application/json", b'{"id": "chatcmpl-1", "object": "chat.completion", "cho'),
    "html": (
        "text/html; charset=utf-8",
        b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head>\n"
        b"<body><h1>It works!</h1></body></html>\n",
    ),
    "empty": ("text/event-stream", b""),
    "binary_sse": (
        "text/event-stream",
        b"data: \x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01\n\n"
        b"\x00\x9c\xff\xd8\xff\xe0\x00\x10JFIF\n\n",
    ),
    "sse_invalid_json": (
        "text/event-stream",
        b'data: {"id": "chatcmpl-1", "choices": [{"delta": {"content": "Hel\n\n'
        b"data: not json at all\n\n",
    ),
}

_ERROR_INFO: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request_error", "Bad request"),
    401: ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
    403: ("permissions_error", "forbidden", "Forbidden"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    413: ("invalid_request_error", "request_too_large", "Request Entity Too Large"),
    422: ("invalid_request_error", "unprocessable_entity", "Unprocessable Entity"),
    424: ("invalid_request_error", "failed_dependency", "Failed Dependency"),
    429: ("tokens", "rate_limit_exceeded", ""),
    498: ("capacity_exceeded", "flex_tier_capacity_exceeded", "Flex tier capacity exceeded"),
    499: ("request_cancelled", "request_cancelled", "Request cancelled"),
    500: ("internal_server_error", "internal_server_error", "Internal Server Error"),
    502: ("internal_server_error", "bad_gateway", "Bad Gateway"),
    503: ("internal_server_error", "service_unavailable", "Service Unavailable"),
    524: ("internal_server_error", "timeout", "A timeout occurred"),
}

_TOKEN_RE = re.compile(r"\s*\S+\s*")
_NAME_RE = re.compile(r"[A-Za-z_]+")
_SLOW_WORDS = (
    "The road north winds past the old mill where the river bends and the crows gather at "
    "dusk, and travellers say the lanterns there burn blue when a storm is coming in from the "
    "hills beyond the ridge."
).split()
_JSON_DECODER = json.JSONDecoder()


# ---------------------------------------------------------------------------------------------
# Public data types


@dataclass
class ToolCall:
    """One scripted tool call: function ``name`` and ``arguments`` (a JSON value or a string)."""

    name: str
    arguments: Any = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        """Return the arguments as the JSON string sent on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Reply:
    """A scripted reply; every field is optional.

    ``text``: content to send (default: the default generator's text, unless ``json`` or
    ``tool_calls`` is given). ``json``: a JSON value sent as the content. ``tool_calls``:
    :class:`ToolCall` objects or ``{"name", "arguments", "id"?}`` mappings. ``status``: a non-200
    status answers with Groq's JSON error body (``error_message`` overrides the message,
    ``retry_after`` adds ``retry-after``). ``headers``: extra response headers.
    ``cut_after_chunks``: abort the TCP connection after N content/tool chunks.
    ``stall_s``: wait before sending anything. ``usage``: override ``prompt_tokens`` /
    ``completion_tokens`` / ``total_tokens``. ``finish``: override ``finish_reason``.
    ``ttft_ms`` / ``tokens_per_s``: per-reply pacing overrides. ``stream_error``: a message (or
    a whole error object) sent Groq-style as ``data: {"error": {...}}`` after the content chunks
    (or after ``cut_after_chunks`` of them), after which the stream ends without a final chunk
    or ``[DONE]`` (the SDK raises ``APIError``); a non-streaming request gets a 500 instead.
    ``garbage``: answer 200 with that body of :data:`GARBAGE_BODIES` instead of a completion.
    ``echo_headers``: echo the request's headers (see *Hostile upstreams* in the module doc).
    ``groq_error``: after the content, a chunk with ``x_groq.error`` set to this string ends the
    stream (Groq's way of stopping a stream early); a non-streaming request gets a 500.
    """

    text: str | None = None
    json: Any = None
    tool_calls: Sequence[ToolCall | Mapping[str, Any]] | None = None
    status: int = 200
    retry_after: float | None = None
    error_message: str | None = None
    headers: Mapping[str, str] | None = None
    cut_after_chunks: int | None = None
    stall_s: float = 0.0
    usage: Mapping[str, int] | None = None
    finish: str | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    stream_error: str | Mapping[str, Any] | None = None
    garbage: str | None = None
    echo_headers: bool = False
    groq_error: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        """Build a reply from a JSON object with the same field names (unknown keys rejected)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown Reply fields: {sorted(unknown)}")
        return cls(**dict(data))


@dataclass
class RequestRecord:
    """One request the fake upstream received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    time: float
    monotonic: float
    #: ``time.monotonic_ns()`` when the request reached the handler (the stamps' arrival)
    arrival_ns: int = 0
    #: Usage reported for this request (``None`` if none was sent, e.g. errors or cut streams).
    usage: dict[str, Any] | None = None
    #: ``"pending"``, ``"completed"``, ``"error"``, ``"stream_error"``, ``"cut"``,
    #: ``"garbage"`` or ``"disconnected"``.
    outcome: str = "pending"

    @property
    def model(self) -> str | None:
        """The requested model, if the body is a JSON object with one."""
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streaming reply."""
        return bool(self.body.get("stream")) if isinstance(self.body, dict) else False

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's ``messages`` (empty if absent)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return self.body["messages"]
        return []

    @property
    def last_user_text(self) -> str:
        """Text of the last user message (directives included)."""
        return _last_user_text(self.messages)


# ---------------------------------------------------------------------------------------------
# Pure helpers


def tokenize(text: str, chars_per_token: int | None = None) -> list[str]:
    """Split ``text`` into the fake's tokens; ``"".join(tokenize(t)) == t`` always holds.

    By default a token is one word plus the whitespace after it; with ``chars_per_token`` it is
    a slice of that many characters.
    """
    if not text:
        return []
    if chars_per_token and chars_per_token > 0:
        return [text[i : i + chars_per_token] for i in range(0, len(text), chars_per_token)]
    tokens = _TOKEN_RE.findall(text)
    if not tokens:
        return [text]
    return tokens


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Return the fake's ``prompt_tokens``: content characters // 4 + 1 per message."""
    chars = sum(len(_content_text(m.get("content"))) for m in messages if isinstance(m, Mapping))
    return chars // 4 + len(messages)


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def parse_directives(text: str) -> tuple[str, list[tuple[str, Any]]]:
    """Return ``text`` with ``[[…]]`` directives removed, and the directives as ``(name, arg)``.

    ``arg`` is ``None`` (no argument), a string, a parsed JSON value (``json``) or, for ``tool``,
    a ``(name, arguments)`` tuple. Unknown ``[[…]]`` spans are left in the text.
    """
    out: list[str] = []
    directives: list[tuple[str, Any]] = []
    pos = 0
    while True:
        start = text.find("[[", pos)
        if start < 0:
            out.append(text[pos:])
            break
        parsed = _parse_one(text, start)
        if parsed is None:
            out.append(text[pos : start + 2])
            pos = start + 2
            continue
        directive, end = parsed
        out.append(text[pos:start])
        directives.append(directive)
        pos = end
    clean = " ".join("".join(out).split())
    return clean, directives


_KNOWN_DIRECTIVES = {
    "reply",
    "words",
    "slow",
    "status",
    "cut",
    "stall",
    "tool",
    "json",
    "ttft",
    "tps",
    "stream_error",
    "trickle",
    "garbage",
    "echo_headers",
    "groq_error",
}


def _parse_one(text: str, start: int) -> tuple[tuple[str, Any], int] | None:
    m = _NAME_RE.match(text, start + 2)
    if m is None or m.group(0).lower() not in _KNOWN_DIRECTIVES:
        return None
    name = m.group(0).lower()
    i = m.end()
    if text.startswith("]]", i):
        return (name, None), i + 2
    if not text.startswith(":", i):
        return None
    i += 1
    if name == "json":
        try:
            value, j = _JSON_DECODER.raw_decode(text, i)
        except ValueError:
            return None
        if not text.startswith("]]", j):
            return None
        return (name, value), j + 2
    if name == "tool":
        colon = text.find(":", i)
        close = text.find("]]", i)
        if close < 0:
            return None
        if colon < 0 or colon > close:
            return (name, (text[i:close].strip(), {})), close + 2
        tool_name = text[i:colon].strip()
        try:
            args, j = _JSON_DECODER.raw_decode(text, colon + 1)
        except ValueError:
            return (name, (tool_name, text[colon + 1 : close])), close + 2
        if not text.startswith("]]", j):
            return None
        return (name, (tool_name, args)), j + 2
    close = text.find("]]", i)
    if close < 0:
        return None
    return (name, text[i:close]), close + 2


def _words(n: int) -> str:
    words = [_SLOW_WORDS[i % len(_SLOW_WORDS)] for i in range(n)]
    return " ".join(words) + ("." if words else "")


def _example_from_schema(schema: Any, text: str, depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > 16:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            for option in options:
                if isinstance(option, Mapping) and option.get("type") != "null":
                    return _example_from_schema(option, text, depth + 1)
            return None
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), None)
    if typ == "object" or (typ is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {k: _example_from_schema(v, text, depth + 1) for k, v in props.items()}
    if typ == "array":
        return []
    if typ == "string":
        return text
    if typ in ("integer", "number"):
        return schema.get("minimum", 0)
    if typ == "boolean":
        return False
    return None


def default_reply(body: Mapping[str, Any]) -> str:
    """The default generator: a deterministic reply derived from the request body.

    ``"Well met. You said: <last user text without directives, first 20 words>."``; JSON when
    the request's ``response_format`` asks for it (see the module docstring).
    """
    messages = body.get("messages") or []
    clean, _ = parse_directives(_last_user_text(messages))
    words = clean.split()
    sentence = f"Well met. You said: {' '.join(words[:20])}." if words else "Well met, traveller."
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            return json.dumps({"reply": sentence})
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            value = _example_from_schema(schema, sentence) if schema else None
            return json.dumps(value if value is not None else {"reply": sentence})
    return sentence


def _reply_from_directives(directives: list[tuple[str, Any]], fake: FakeUpstream) -> Reply:
    reply = Reply()
    tools: list[ToolCall] = []
    for name, arg in directives:
        try:
            if name == "reply":
                reply.text = "" if arg is None else str(arg)
            elif name == "words":
                reply.text = _words(int(arg))
            elif name == "slow":
                reply.text = _words(200)
                reply.tokens_per_s = fake.slow_tokens_per_s
            elif name == "status":
                reply.status = int(arg)
                if reply.status == 429 and reply.retry_after is None:
                    reply.retry_after = 1
            elif name == "cut":
                reply.cut_after_chunks = int(arg)
            elif name == "stall":
                reply.stall_s = fake.stall_directive_s if arg in (None, "") else float(arg)
            elif name == "tool":
                tool_name, args = arg
                tools.append(ToolCall(name=tool_name, arguments=args))
            elif name == "json":
                reply.json = arg
            elif name == "stream_error":
                reply.stream_error = "" if arg is None else str(arg)
            elif name == "ttft":
                reply.ttft_ms = float(arg)
            elif name == "tps":
                reply.tokens_per_s = float(arg)
            elif name == "trickle":
                reply.text = _words(1000)
                reply.tokens_per_s = 1 / (float(arg) if arg else 1.0)
            elif name == "garbage":
                reply.garbage = str(arg) if arg in GARBAGE_BODIES else "invalid_json"
            elif name == "echo_headers":
                reply.echo_headers = True
            elif name == "groq_error":
                reply.groq_error = arg or "stream stopped"
        except (TypeError, ValueError):
            continue
    if tools:
        reply.tool_calls = tools
        if reply.text is None and reply.json is None:
            reply.text = "As you wish."
    return reply


def _stream_error_object(error: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
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


def _echoed(message: str, echo: Mapping[str, str] | None) -> str:
    """``message`` followed by the request's headers, as a header-echoing upstream writes it."""
    if not echo:
        return message
    return f"{message} request headers: {json.dumps(dict(echo))}"


def _format_duration(seconds: float) -> str:
    """Groq's duration format: ``"2m59.56s"``, ``"1s"``, ``"120ms"``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(seconds, 60)
    sec_text = f"{secs:.2f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{sec_text}" if minutes else sec_text


# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class _Plan:
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
    groq_error: str | None = None
    #: the request's headers when the reply echoes them
    echo: dict[str, str] | None = None


class _Cut(Exception):
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


class FakeUpstream:
    """An in-loop fake OpenAI-compatible server; see the module docstring for the behaviour.

    Every constructor argument is also a mutable attribute of the same name (changes apply to
    the next request).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ttft_ms: float = 0.0,
        tokens_per_s: float = 0.0,
        chars_per_token: int | None = None,
        reply_fn: Callable[[Mapping[str, Any]], str | Reply] | None = None,
        rate_limit_headers: Mapping[str, str] | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        known_models_only: bool = False,
        strict_groq: bool = True,
        api_key: str | None = None,
        slow_tokens_per_s: float = 10.0,
        stall_directive_s: float = 60.0,
        write_interval_ms: float = 10.0,
        record_requests: bool = True,
        system_fingerprint: str = "fp_fake0000",
        stamp_tokens: bool = False,
        echo_headers: bool = False,
    ) -> None:
        """Configure the server; nothing is bound until :meth:`start` (or ``async with``)."""
        self.host = host
        self.port = port
        self.ttft_ms = ttft_ms
        self.tokens_per_s = tokens_per_s
        self.chars_per_token = chars_per_token
        self.reply_fn: Callable[[Mapping[str, Any]], str | Reply] = reply_fn or default_reply
        self.rate_limit_headers: dict[str, str] = dict(
            DEFAULT_RATE_LIMIT_HEADERS if rate_limit_headers is None else rate_limit_headers
        )
        self.models = list(models)
        self.known_models_only = known_models_only
        self.strict_groq = strict_groq
        self.api_key = api_key
        self.slow_tokens_per_s = slow_tokens_per_s
        self.stall_directive_s = stall_directive_s
        self.write_interval_ms = write_interval_ms
        self.record_requests = record_requests
        self.system_fingerprint = system_fingerprint
        self.stamp_tokens = stamp_tokens
        self.echo_headers = echo_headers

        self.requests: list[RequestRecord] = []
        self.completed = 0
        self.disconnects = 0
        self.active_streams = 0
        self.errors = 0
        self.last_usage: dict[str, Any] | None = None

        self._script: deque[Reply] = deque()
        self._model_scripts: dict[str, deque[Reply]] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL of the server (``http://127.0.0.1:PORT``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (ends with ``/v1``) for ``AsyncOpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    @property
    def groq_base_url(self) -> str:
        """Groq-style base URL (``…/openai/v1``); serves the same endpoints."""
        return f"{self.url}/openai/v1"

    def make_app(self) -> web.Application:
        """Return the aiohttp application (routes only; :meth:`start` runs it)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", "/openai/v1"):
            app.router.add_post(f"{prefix}/chat/completions", self._handle_chat)
            app.router.add_get(f"{prefix}/models", self._handle_models)
        app.router.add_get("/_fake/stats", self._handle_stats)
        app.router.add_post("/_fake/script", self._handle_script)
        app.router.add_post("/_fake/reset", self._handle_reset)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        return app

    async def start(self) -> None:
        """Bind and start serving in the running event loop; sets :attr:`port`."""
        if self._runner is not None:
            raise RuntimeError("FakeUpstream already started")
        self._closing = False
        runner = web.AppRunner(
            self.make_app(),
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.5,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=4096, reuse_address=True)
        await site.start()
        self._runner = runner
        server = site._server  # the asyncio Server; aiohttp exposes no public accessor
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving; in-flight requests are cancelled (not counted as disconnects)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        await runner.cleanup()

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- scripting -------------------------------------------------------------------------

    def script(self, *replies: Reply | str, model: str | None = None) -> None:
        """Queue replies (FIFO, one per request); a string is ``Reply(text=...)``.

        With ``model`` the replies are used only for requests for that model (and before the
        general queue).
        """
        queue = self._script if model is None else self._model_scripts.setdefault(model, deque())
        for reply in replies:
            queue.append(Reply(text=reply) if isinstance(reply, str) else reply)

    @property
    def pending_scripts(self) -> int:
        """Number of scripted replies not yet consumed (all queues)."""
        return len(self._script) + sum(len(q) for q in self._model_scripts.values())

    def clear_script(self) -> None:
        """Drop every queued scripted reply."""
        self._script.clear()
        self._model_scripts.clear()

    def reset(self) -> None:
        """Clear scripts, records and counters (not the knobs)."""
        self.clear_script()
        self.requests.clear()
        self.completed = self.disconnects = self.errors = 0
        self.last_usage = None
        self._notify()

    # -- waiting ---------------------------------------------------------------------------

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` is true (re-checked on every state change).

        Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_disconnect(self, timeout: float = 5.0, count: int = 1) -> int:  # noqa: ASYNC109
        """Wait until ``disconnects >= count``; return :attr:`disconnects`."""
        await self.wait_for(lambda: self.disconnects >= count, timeout)
        return self.disconnects

    async def wait_requests(self, count: int = 1, timeout: float = 5.0) -> list[RequestRecord]:  # noqa: ASYNC109
        """Wait until at least ``count`` chat requests were received; return the records."""
        await self.wait_for(lambda: len(self.requests) >= count, timeout)
        return self.requests

    async def wait_completed(self, count: int = 1, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Wait until ``completed >= count``; return :attr:`completed`."""
        await self.wait_for(lambda: self.completed >= count, timeout)
        return self.completed

    async def wait_active_streams(self, count: int = 1, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Wait until exactly ``count`` streams are active; return :attr:`active_streams`."""
        await self.wait_for(lambda: self.active_streams == count, timeout)
        return self.active_streams

    @property
    def last_request(self) -> RequestRecord | None:
        """The most recent chat request record, if any."""
        return self.requests[-1] if self.requests else None

    # -- request handling ------------------------------------------------------------------

    def _base_headers(
        self, extra: Mapping[str, str] | None = None, echo: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        headers = dict(self.rate_limit_headers)
        headers["x-request-id"] = "req_" + uuid.uuid4().hex[:26]
        if echo:
            headers.update({f"x-echo-{name}": value for name, value in echo.items()})
        if extra:
            headers.update(extra)
        return headers

    def _error(
        self,
        status: int,
        message: str | None = None,
        *,
        model: str = "",
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        param: str | None = None,
        echo: Mapping[str, str] | None = None,
    ) -> web.Response:
        err_type, code, default_message = _ERROR_INFO.get(
            status, ("internal_server_error", "error", f"HTTP {status}")
        )
        if status == 429 and not message:
            wait = retry_after if retry_after is not None else 60.36
            message = (
                f"Rate limit reached for model `{model}` in organization `org_fake` service "
                "tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 6000, "
                f"Requested 100. Please try again in {_format_duration(wait)}. Need more "
                "tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
            )
        error: dict[str, Any] = {
            "message": _echoed(message or default_message, echo),
            "type": err_type,
        }
        if param is not None:
            error["param"] = param
        error["code"] = code
        out_headers = self._base_headers(headers, echo)
        if retry_after is not None:
            out_headers["retry-after"] = f"{retry_after:g}"
        self.errors += 1
        return web.json_response({"error": error}, status=status, headers=out_headers)

    def _validate(
        self, request: web.Request, body: Any, echo: Mapping[str, str] | None
    ) -> web.Response | None:
        if self.api_key is not None:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return self._error(401, echo=echo)
        if not isinstance(body, dict):
            return self._error(400, "request body must be a JSON object", echo=echo)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self._error(400, "property 'model' is missing", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "property 'messages' is missing", param="messages")
        if self.known_models_only and model not in self.models:
            return self._error(
                404, f"The model `{model}` does not exist or you do not have access to it."
            )
        if self.strict_groq:
            for key in ("logprobs", "logit_bias", "top_logprobs"):
                if body.get(key) not in (None, False):
                    return self._error(400, f"'{key}' : not supported by the model", param=key)
            if body.get("n") not in (None, 1):
                return self._error(400, "'n' : number must be at most 1", param="n")
            for i, message in enumerate(messages):
                if isinstance(message, dict) and "name" in message:
                    return self._error(
                        400,
                        f"'messages.{i}' : property 'name' is unsupported",
                        param=f"messages.{i}.name",
                    )
        return None

    def _next_reply(self, body: Mapping[str, Any]) -> Reply:
        queue = self._model_scripts.get(body.get("model", ""))
        if queue:
            return queue.popleft()
        if self._script:
            return self._script.popleft()
        _, directives = parse_directives(_last_user_text(body.get("messages") or []))
        if directives:
            return _reply_from_directives(directives, self)
        generated = self.reply_fn(body)
        return Reply(text=generated) if isinstance(generated, str) else generated

    def _plan(self, body: Mapping[str, Any], reply: Reply) -> _Plan:
        if reply.json is not None:
            text = json.dumps(reply.json)
        elif reply.text is not None:
            text = reply.text
        elif reply.tool_calls:
            text = ""
        else:
            generated = self.reply_fn(body)
            if isinstance(generated, Reply):
                text = generated.text or ""
            else:
                text = generated
        tokens = tokenize(text, self.chars_per_token)
        tool_calls = [
            tc if isinstance(tc, ToolCall) else ToolCall(**dict(tc))
            for tc in (reply.tool_calls or [])
        ]
        finish = "tool_calls" if tool_calls else "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit >= 0 and len(tokens) > limit:
            tokens = tokens[:limit]
            tool_calls = []
            finish = "length"
        if reply.finish is not None:
            finish = reply.finish
        ttft_ms = self.ttft_ms if reply.ttft_ms is None else reply.ttft_ms
        tps = self.tokens_per_s if reply.tokens_per_s is None else reply.tokens_per_s
        return _Plan(
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
            stream_error=_stream_error_object(reply.stream_error),
            garbage=reply.garbage,
            groq_error=reply.groq_error,
        )

    def _usage(self, plan: _Plan, completion_tokens: int, completion_time: float) -> dict[str, Any]:
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

    def _tool_pieces(self, plan: _Plan) -> list[tuple[int, ToolCall, list[str]]]:
        out = []
        for index, tc in enumerate(plan.tool_calls):
            if tc.id is None:
                tc = ToolCall(
                    name=tc.name, arguments=tc.arguments, id="call_" + uuid.uuid4().hex[:24]
                )
            pieces = tokenize(tc.arguments_json(), self.chars_per_token) or [""]
            out.append((index, tc, pieces))
        return out

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        arrival_ns = time.monotonic_ns()
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RequestRecord(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            time=time.time(),
            monotonic=time.monotonic(),
            arrival_ns=arrival_ns,
        )
        if self.record_requests:
            self.requests.append(record)
        self._notify()
        echo = record.headers if self.echo_headers else None
        if body is None and raw:
            record.outcome = "error"
            return self._error(400, "request body is not valid JSON", echo=echo)
        invalid = self._validate(request, body, echo)
        if invalid is not None:
            record.outcome = "error"
            return invalid
        reply = self._next_reply(body)
        plan = self._plan(body, reply)
        if reply.echo_headers or echo:
            plan.echo = record.headers
        stream = bool(body.get("stream"))
        if stream and plan.stream_error is not None and plan.echo:
            error_text = str(plan.stream_error.get("message", ""))
            plan.stream_error["message"] = _echoed(error_text, plan.echo)
        if plan.groq_error is not None:
            if not stream:
                plan.stream_error = _stream_error_object(plan.groq_error)
            elif plan.echo:
                plan.groq_error = _echoed(plan.groq_error, plan.echo)
        if stream:
            self.active_streams += 1
            self._notify()
        try:
            if plan.stall_s > 0:
                await asyncio.sleep(plan.stall_s)
            if plan.status != 200:
                record.outcome = "error"
                return self._error(
                    plan.status,
                    plan.error_message,
                    model=plan.model,
                    retry_after=plan.retry_after,
                    headers=plan.headers,
                    echo=plan.echo,
                )
            if plan.garbage is not None:
                return await self._garbage(plan, record)
            if stream:
                return await self._stream(request, body, plan, record)
            return await self._complete(request, plan, record)
        except _Cut:
            record.outcome = "cut"
            raise asyncio.CancelledError from None
        except (asyncio.CancelledError, ConnectionResetError):
            if record.outcome == "pending" and not self._closing:
                record.outcome = "disconnected"
                self.disconnects += 1
            raise
        finally:
            if stream:
                self.active_streams -= 1
            self._notify()

    def _cut(self, request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise _Cut

    async def _complete(
        self, request: web.Request, plan: _Plan, record: RequestRecord
    ) -> web.Response:
        content = "".join(plan.tokens)
        pieces = self._tool_pieces(plan)
        n_pieces = sum(len(p) for _, _, p in pieces)
        n = len(plan.tokens) + n_pieces
        gen_time = n / plan.tokens_per_s if plan.tokens_per_s > 0 else 0.0
        if plan.ttft_s + gen_time > 0:
            await asyncio.sleep(plan.ttft_s + gen_time)
        if plan.cut_after is not None:
            self._cut(request)
        if plan.stream_error is not None:
            record.outcome = "error"
            error_text = str(plan.stream_error.get("message", ""))
            return self._error(500, error_text, model=plan.model, echo=plan.echo)
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
        usage = self._usage(plan, n, gen_time)
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
            "system_fingerprint": self.system_fingerprint,
            "x_groq": {"id": "req_" + uuid.uuid4().hex[:26]},
        }
        response = web.json_response(payload, headers=self._base_headers(plan.headers, plan.echo))
        record.usage = usage
        record.outcome = "completed"
        self.last_usage = usage
        self.completed += 1
        return response

    async def _stream(
        self, request: web.Request, body: Mapping[str, Any], plan: _Plan, record: RequestRecord
    ) -> web.StreamResponse:
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
                "system_fingerprint": self.system_fingerprint,
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
        tool_pieces = self._tool_pieces(plan)
        for index, tc, pieces in tool_pieces:
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
        n_tool_pieces = sum(len(p) for _, _, p in tool_pieces)

        response = web.StreamResponse(
            status=200,
            headers=self._base_headers(
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
        write = _stamping_writer(response, record.arrival_ns) if self.stamp_tokens else None
        await self._write_paced(write or response.write, chunks, limit, plan.tokens_per_s)
        if plan.stream_error is not None:
            await response.write(
                b"data: " + json.dumps({"error": plan.stream_error}).encode() + b"\n\n"
            )
            await response.write_eof()
            record.outcome = "stream_error"
            self.errors += 1
            return response
        if plan.groq_error is not None:
            await response.write(choice({}, x_groq={"id": groq_id, "error": plan.groq_error}))
            await response.write_eof()
            record.outcome = "stream_error"
            self.errors += 1
            return response
        if plan.cut_after is not None:
            self._cut(request)
        completion_time = time.monotonic() - started
        usage = self._usage(plan, len(plan.tokens) + n_tool_pieces, completion_time)
        tail = [choice({}, plan.finish, x_groq={"id": groq_id, "usage": usage})]
        options = body.get("stream_options")
        if isinstance(options, Mapping) and options.get("include_usage"):
            tail.append(event({"choices": [], "usage": usage}))
        tail.append(b"data: [DONE]\n\n")
        await response.write(b"".join(tail))
        record.usage = usage
        self.last_usage = usage
        await response.write_eof()
        record.outcome = "completed"
        self.completed += 1
        return response

    async def _garbage(self, plan: _Plan, record: RequestRecord) -> web.Response:
        """A 200 whose body is one of :data:`GARBAGE_BODIES` (after the reply's TTFT)."""
        if plan.ttft_s > 0:
            await asyncio.sleep(plan.ttft_s)
        content_type, body = GARBAGE_BODIES[plan.garbage or "invalid_json"]
        headers = self._base_headers({**plan.headers, "content-type": content_type}, plan.echo)
        record.outcome = "garbage"
        return web.Response(status=200, body=body, headers=headers)

    async def _write_paced(
        self,
        write: Callable[[bytes], Awaitable[None]],
        chunks: list[bytes],
        limit: int,
        tps: float,
    ) -> None:
        if limit <= 0:
            return
        if tps <= 0:
            await write(b"".join(chunks[:limit]))
            return
        interval = 1.0 / tps
        min_sleep = max(0.0, self.write_interval_ms / 1000.0)
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

    # -- other endpoints -------------------------------------------------------------------

    async def _handle_models(self, request: web.Request) -> web.Response:
        data = [
            {
                "id": model,
                "object": "model",
                "created": 1693721698,
                "owned_by": "Fake",
                "active": True,
                "context_window": 131072,
                "public_apps": None,
                "max_completion_tokens": 32768,
            }
            for model in self.models
        ]
        return web.json_response({"object": "list", "data": data}, headers=self._base_headers())

    def stats(self) -> dict[str, Any]:
        """Counters as a JSON-able dict (also served at ``GET /_fake/stats``)."""
        return {
            "requests": len(self.requests),
            "completed": self.completed,
            "disconnects": self.disconnects,
            "active_streams": self.active_streams,
            "errors": self.errors,
            "pending_scripts": self.pending_scripts,
            "last_usage": self.last_usage,
        }

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _handle_script(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            items = data if isinstance(data, list) else [data]
            replies = [Reply.from_dict(item) for item in items]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        self.script(*replies, model=request.query.get("model"))
        return web.json_response({"queued": len(replies), "pending": self.pending_scripts})

    async def _handle_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "error": {
                    "message": "Unknown request URL: "
                    f"{request.method} {request.path}. Please check the URL for typos.",
                    "type": "invalid_request_error",
                    "code": "unknown_url",
                }
            },
            status=404,
        )


# ---------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m npcbridge.testing.fake_upstream",
        description="Serve the fake Groq/OpenAI upstream until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (default)")
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--tokens-per-s", type=float, default=0.0, help="0 = unpaced")
    parser.add_argument("--chars-per-token", type=int, default=None)
    parser.add_argument("--write-interval-ms", type=float, default=10.0)
    parser.add_argument("--stall-s", type=float, default=60.0, help="length of [[stall]]")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--no-rate-limit-headers", action="store_true")
    parser.add_argument("--record", action="store_true", help="keep request records (memory grows)")
    parser.add_argument("--no-strict-groq", action="store_true")
    parser.add_argument(
        "--echo-headers", action="store_true", help="echo request headers back (echo_headers)"
    )
    parser.add_argument(
        "--stamp-words",
        type=int,
        default=0,
        metavar="N",
        help="benchmarks: every reply is N time-stamped tokens (stamp_tokens); 0 = normal replies",
    )
    return parser.parse_args(argv)


def stamped_reply(words: int) -> Callable[[Mapping[str, Any]], str]:
    """A ``reply_fn`` whose replies are ``words`` tokens of :data:`STAMP_PLACEHOLDER`."""
    text = " ".join([STAMP_PLACEHOLDER] * words) + " "
    return lambda body: text


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeUpstream(
        host=args.host,
        port=args.port,
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        chars_per_token=args.chars_per_token,
        write_interval_ms=args.write_interval_ms,
        stall_directive_s=args.stall_s,
        api_key=args.api_key,
        rate_limit_headers={} if args.no_rate_limit_headers else None,
        record_requests=args.record,
        strict_groq=not args.no_strict_groq,
        reply_fn=stamped_reply(args.stamp_words) if args.stamp_words > 0 else None,
        stamp_tokens=args.stamp_words > 0,
        echo_headers=args.echo_headers,
    )
    stop = stop_event()
    async with fake:
        line = {
            "base_url": fake.base_url,
            "groq_base_url": fake.groq_base_url,
            "url": fake.url,
            "port": fake.port,
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: serve until SIGTERM/SIGINT; return the exit status."""
    args = _parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
