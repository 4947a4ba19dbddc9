"""Reading an OpenAI-style completion stream (``text/event-stream``) into stream events.

The body is split into lines and events as bytes: an SSE stream is UTF-8 by definition, and a
line break byte never occurs inside a UTF-8 character, so no text decoder or charset look-up is
needed per response. Each event's data is one ``chat.completion.chunk`` (decoded with orjson);
:class:`StreamState` turns the chunks into :class:`~.base.TextDelta`,
:class:`~.base.ToolCallDelta`, the usage and the finish reason, and records the stream's end.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..pipeline.turn import Usage
from .base import Reason, StreamEvent, TextDelta, ToolCallDelta, UpstreamError


def merged(events: list[StreamEvent]) -> list[StreamEvent]:
    """``events`` with runs of text deltas joined into one."""
    if len(events) < 2:
        return events
    out: list[StreamEvent] = []
    for event in events:
        if isinstance(event, TextDelta) and out and isinstance(out[-1], TextDelta):
            out[-1] = TextDelta(out[-1].text + event.text)
        else:
            out.append(event)
    return out


class StreamState:
    """Turns decoded ``chat.completion.chunk`` dicts into stream events."""

    __slots__ = ("finish", "usage", "data", "done", "error", "chunks", "ended")

    def __init__(self) -> None:
        self.finish = "stop"
        self.usage: Usage | None = None
        self.data: list[bytes] = []
        self.done = False
        self.error: UpstreamError | None = None
        #: chunks decoded so far
        self.chunks = 0
        #: the stream reached its end: ``[DONE]`` or a chunk with a ``finish_reason``
        self.ended = False

    def lines(self, lines: list[bytes]) -> list[StreamEvent]:
        """The events of some complete SSE lines (``data:`` events end at a blank line)."""
        events: list[StreamEvent] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.startswith(b"data:"):
                self.data.append(line[6:] if line.startswith(b"data: ") else line[5:])
                if line[-1:] != b"}" and line[-1:] != b"]":
                    continue  # possibly a multi-line event: wait for the blank line
            elif line or not self.data:
                continue  # "event:", "id:", comments, keep-alive blank lines
            payload = self.data[0] if len(self.data) == 1 else b"\n".join(self.data)
            self.data = []
            events.extend(self.event(payload))
        return events

    def event(self, payload: bytes) -> list[StreamEvent]:
        """The events of one complete SSE event's data."""
        if payload == b"[DONE]":
            # read on to the end of the body, so the connection goes back to the pool
            self.done = self.ended = True
        if self.done:
            return []
        try:
            chunk = orjson.loads(payload)
        except ValueError:
            chunk = _lenient_json(payload)
        try:
            return self.feed(chunk)
        except UpstreamError as exc:
            self.error = exc  # raised after the text that came before it
            self.done = True
            return []

    def feed(self, chunk: Any) -> list[StreamEvent]:
        """The events of one chunk (raises :class:`UpstreamError` for an error chunk)."""
        if not isinstance(chunk, dict):
            raise UpstreamError(
                "a stream event that is not a JSON object", reason=Reason.BAD_RESPONSE
            )
        if chunk.get("error"):
            raise UpstreamError(reason=Reason.STREAM_ERROR)
        self.chunks += 1
        events: list[StreamEvent] = []
        usage = chunk.get("usage")
        groq = chunk.get("x_groq")
        if usage is not None or groq is not None:  # the first and the last chunk, not a token's
            self._usage(usage, groq)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    events.append(TextDelta(content))
                calls = delta.get("tool_calls")
                if calls:
                    events.extend(_tool_call_deltas(calls))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.ended = True
        if isinstance(groq, dict) and groq.get("error"):
            raise UpstreamError(reason=Reason.STREAM_ERROR, status=_error_status(groq["error"]))
        return events

    def _usage(self, usage: Any, groq: Any) -> None:
        """Keep the usage a chunk reports: OpenAI's ``usage``, else Groq's ``x_groq.usage``."""
        if isinstance(usage, dict):
            self.usage = Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
        elif isinstance(groq, dict) and isinstance(groq.get("usage"), dict):
            u = groq["usage"]
            self.usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))


def _tool_call_deltas(calls: list[Any]) -> list[StreamEvent]:
    """The pieces of tool calls one chunk's delta carries."""
    events: list[StreamEvent] = []
    for call in calls:
        fn = call.get("function") or {}
        events.append(
            ToolCallDelta(
                index=call.get("index", 0),
                id=call.get("id"),
                name=fn.get("name"),
                arguments=fn.get("arguments") or "",
            )
        )
    return events


def _error_status(error: Any) -> int | None:
    """The HTTP status an in-stream error object carries (``status_code``, e.g. 400 for a
    request the upstream refuses: final, never retried), or None (a failure worth retrying)."""
    status = error.get("status_code") if isinstance(error, dict) else None
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return None


#: stands for an event whose data is not JSON (feed() refuses anything but an object)
_NOT_JSON = object()


def _lenient_json(payload: bytes) -> Any:
    """An event's JSON whose bytes are not all UTF-8 (orjson refuses them): the bad bytes
    become U+FFFD, as a text decoder would make them, so one broken character in a token does
    not end the reply; :data:`_NOT_JSON` when it is not JSON at all."""
    try:
        return orjson.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        return _NOT_JSON
