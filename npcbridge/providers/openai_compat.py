"""Any OpenAI-compatible upstream through the official ``openai`` SDK (Groq by default)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson

try:  # the HTTP library the installed openai SDK is built on
    from httpx2 import Response as _HttpResponse
except ImportError:  # pragma: no cover - SDK releases built on httpx
    from httpx import Response as _HttpResponse  # type: ignore[no-redef]

from ..pipeline.turn import Usage
from ..process import add_secret
from .base import (
    ProviderRequest,
    Reason,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
)

#: a network read at least this long (bytes) is a backlog: the stream yields to the loop
BACKLOG_CHARS = 8192

#: the SDK's description of this machine (OS, architecture, Python and SDK versions): the
#: upstream needs none of it, so it is not sent (``openai.Omit`` removes a default header)
PLATFORM_HEADERS = (
    "X-Stainless-Lang",
    "X-Stainless-Package-Version",
    "X-Stainless-OS",
    "X-Stainless-Arch",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Async",
)

#: Parameters Groq answers with 400; dropped for every upstream (none of ours needs them).
UNSUPPORTED_PARAMS = ("logprobs", "logit_bias", "top_logprobs", "n")


def sanitize_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Move ``name`` into the content (Groq rejects ``messages[].name``)."""
    clean = []
    for message in messages:
        if "name" in message:
            message = dict(message)
            name = message.pop("name")
            if isinstance(message.get("content"), str) and name:
                message["content"] = f"{name}: {message['content']}"
        clean.append(message)
    return clean


def sanitize_params(params: dict[str, Any]) -> dict[str, Any]:
    """Drop parameters Groq rejects; ``n`` survives only as 1."""
    clean = {k: v for k, v in params.items() if k not in UNSUPPORTED_PARAMS}
    return clean


_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:h|ms|m|s))+)", re.IGNORECASE)

_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$"
)


def parse_duration_s(text: str | None) -> float | None:
    """Parse Groq's durations ("2m59.56s", "1s", "6m0s", "120ms") or plain seconds ("1.5")."""
    if not text:
        return None
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        return None
    h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def sdk_client(
    base_url: str, api_key: str, timeout_s: float, connect_timeout_s: float, *, aiohttp: bool
) -> openai.AsyncOpenAI:
    """The ``openai`` SDK client of one provider: the key registered as a secret (never
    logged, whoever echoes it: :mod:`npcbridge.process`), the timeouts, and no retries of its
    own (they belong to the gateway, which knows the turn's latency budget). ``aiohttp``: on
    the SDK's aiohttp transport (the chat stream, bench/RESULTS.md) instead of its default."""
    add_secret(api_key)
    timeout = openai.Timeout(timeout_s, connect=connect_timeout_s)
    http_client = openai.DefaultAioHttpClient(timeout=timeout) if aiohttp else None
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_retries=0,
        http_client=http_client,
    )


class OpenAICompatProvider:
    """Streams chat completions from an OpenAI-compatible server."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        include_usage: bool = True,
        name: str = "openai",
    ) -> None:
        self.name = name
        self.include_usage = include_usage
        self.client = sdk_client(base_url, api_key, timeout_s, connect_timeout_s, aiohttp=True)
        self._omitted: dict[str, str | openai.Omit] = {
            name: openai.Omit() for name in PLATFORM_HEADERS
        }
        # an absolute URL: the SDK uses it as it is instead of joining the path to its base
        # URL on every request (bench/RESULTS.md)
        self.chat_url = f"{str(self.client.base_url).rstrip('/')}/chat/completions"

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        await self.client.close()

    def _arguments(self, request: ProviderRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = sanitize_params(dict(request.params))
        kwargs.update(model=request.model, messages=sanitize_messages(request.messages))
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.tools:
            kwargs["tools"] = request.tools
        if request.response_format:
            kwargs["response_format"] = request.response_format
        if self.include_usage:
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        """Stream one completion; see :class:`npcbridge.providers.base.Provider`."""
        kwargs = self._arguments(request)
        kwargs["stream"] = True
        try:
            # The SDK sends the request (auth, headers, timeouts, status errors). The body is
            # plain JSON already, so it is sent as encoded bytes (the SDK's typed-dict transform
            # and its JSON encoder are skipped), and the stream is parsed here from the SSE
            # lines: the SDK's typed chunk objects cost more CPU than the rest of a turn
            # (bench/RESULTS.md).
            response = await self.client.post(
                self.chat_url,
                cast_to=_HttpResponse,
                content=orjson.dumps(kwargs),
                options={"headers": self._omitted},
                stream=True,
            )
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise sdk_failure(exc) from None
        headers = dict(response.headers.items())  # the keys come lower-cased
        state = _StreamState()
        try:
            # Parse every complete line of each network read, then yield the read's events with
            # neighbouring text merged: the tokens that arrived together go down the pipeline
            # (transforms, frames) as one delta instead of one per token.
            rest = b""
            async for data in _body(response):
                if (
                    data.startswith(b"data: {")
                    and data.endswith(b"}\n\n")
                    and data.find(b"\n") == len(data) - 2
                    and not rest
                    and not state.data
                ):
                    # the common read: one whole event (a token) and nothing else
                    for event in state.event(data[6:-2]):
                        yield event
                else:
                    lines = (rest + data).split(b"\n")
                    rest = lines.pop()
                    for event in _merged(state.lines(lines)):
                        yield event
                if state.error is not None:
                    raise state.error
                if len(data) >= BACKLOG_CHARS:
                    # aiohttp hands over what it has buffered without yielding to the loop: a
                    # read this large means more is waiting, so let the connection's writer
                    # and the other streams run first (a streaming reply's reads are small)
                    await asyncio.sleep(0)
            if rest:
                for event in _merged(state.lines([rest, b""])):
                    yield event
            if state.error is not None:
                raise state.error
            if not state.ended:
                # A 200 is only a reply when it is a completion stream that reached its end:
                # an empty, HTML, JSON or binary body, or a stream that just stops, is a failure
                # (retried and counted by the breaker), never an empty reply.
                reason = Reason.CUT if state.chunks else Reason.BAD_RESPONSE
                raise UpstreamError(reason=reason)
        except UpstreamError:
            raise
        except openai.APITimeoutError:
            raise UpstreamError("upstream timed out mid-stream", timeout=True) from None
        except openai.APIError as exc:
            raise UpstreamError(
                f"upstream stream failed: {type(exc).__name__}", reason=Reason.CUT
            ) from None
        except Exception as exc:  # the HTTP layer's own errors (connection reset, bad chunk)
            if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
                raise UpstreamError("upstream timed out mid-stream", timeout=True) from None
            raise UpstreamError(
                f"upstream stream broke: {type(exc).__name__}", reason=Reason.CUT
            ) from None
        finally:
            await response.aclose()
        yield StreamDone(finish=state.finish, usage=state.usage, headers=headers)


def sdk_failure(exc: openai.APIStatusError | openai.APIConnectionError) -> UpstreamError:
    """The SDK's failure to get an answer as :class:`UpstreamError` in our own words: the
    upstream's body may echo our headers, so only the status and the wait it asks for are kept."""
    if isinstance(exc, openai.APIStatusError):
        headers = {k.lower(): v for k, v in exc.response.headers.items()}
        return UpstreamError(
            status=exc.status_code,
            retry_after_s=_retry_after_s(headers, exc.message),
            headers=headers,
        )
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamError(timeout=True)
    return UpstreamError(reason=Reason.CONNECT)


def _retry_after_s(headers: dict[str, str], body_text: str) -> float | None:
    """The wait an error response asks for: ``retry-after``, else Groq's "try again in 1m0.36s"."""
    after = parse_duration_s(headers.get("retry-after"))
    if after is None:
        match = _TRY_AGAIN.search(body_text or "")
        after = parse_duration_s(match.group(1)) if match else None
    return after


def _merged(events: list[StreamEvent]) -> list[StreamEvent]:
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


class _StreamState:
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


def _body(response: _HttpResponse) -> AsyncIterator[bytes]:
    """The response body's bytes as they arrive. An SSE stream is UTF-8 by definition, so it
    is split into lines and events as bytes, with no text decoder or charset look-up per
    response; a body the upstream compressed anyway is decompressed by the HTTP library."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    return response.aiter_raw() if encoding == "identity" else response.aiter_bytes()
