"""The fake upstream's data types: scripted replies, request records, tokens and prompt sizes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

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


_TOKEN_RE = re.compile(r"\s*\S+\s*")


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
    ``echo_headers``: echo the request's headers (see *Hostile upstreams* in the package doc).
    ``groq_error``: after the content, a chunk with ``x_groq.error`` set to this value (a
    message, or a whole error object such as ``{"message": ..., "status_code": 400}``) ends the
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
    groq_error: str | Mapping[str, Any] | None = None

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
        return last_user_text(self.messages)


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


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list of parts."""
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
    chars = sum(len(content_text(m.get("content"))) for m in messages if isinstance(m, Mapping))
    return chars // 4 + len(messages)


def last_user_text(messages: Sequence[Any]) -> str:
    """The text of the last ``user`` message (empty when there is none)."""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""
