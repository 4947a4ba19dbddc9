"""Any OpenAI-compatible upstream (Groq by default): requests as the official ``openai`` SDK
makes them, sent and streamed with aiohttp."""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

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

log = logging.getLogger(__name__)

#: an error response's body is read up to this many bytes (for the wait it asks for)
ERROR_BODY_BYTES = 65536

#: the most a stream hands over at once (what the SDK's aiohttp transport read): a backlog
#: goes down the pipeline in pieces of this size, so no delta is larger
READ_BYTES = 16384

#: a network read at least this long (bytes) is a backlog: the stream yields to the loop
BACKLOG_CHARS = 8192

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
        add_secret(api_key)  # never logged, whoever echoes it (see npcbridge.process)
        # The official SDK decides what a request looks like (its base URL normalisation, auth
        # and default headers); computed once, and each request is sent with aiohttp directly:
        # the SDK's per-request machinery (request options, its HTTP library's request, URL and
        # header objects, then aiohttp's) cost a fifth of a turn's CPU (bench/RESULTS.md).
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        self.url = f"{sdk.base_url}chat/completions"
        headers = {**sdk.default_headers, **sdk.auth_headers}
        self.headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        #: connect: opening a connection; sock_read: every wait for the upstream (headers, or
        #: the next piece of the stream); connect (aiohttp's name): waiting for a free one
        self.timeout = aiohttp.ClientTimeout(
            sock_connect=connect_timeout_s, sock_read=timeout_s, connect=timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY and NO_PROXY as the SDK honours them, looked up once: aiohttp's own
        # look-up (trust_env) reads the environment on every request (~0.1 ms)
        try:
            self.proxy: URL | None
            self.proxy, self.proxy_auth = get_env_proxy_for_url(URL(self.url))
        except LookupError:
            self.proxy, self.proxy_auth = None, None

    def _client(self) -> aiohttp.ClientSession:
        """The connection pool (made in the running loop on first use)."""
        if self._session is None or self._session.closed:
            # the SDK's own limits for its aiohttp transport; retries belong to the gateway
            connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=5.0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()

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

    async def _open(self, body: bytes) -> aiohttp.ClientResponse:
        """Send the request; a response with a 2xx status, or :class:`UpstreamError`."""
        try:
            response = await self._client().post(
                self.url,
                data=body,
                headers=self.headers,
                proxy=self.proxy,
                proxy_auth=self.proxy_auth,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamError(timeout=True) from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamError(reason=Reason.CONNECT) from None
        log.debug("upstream request: POST %s: HTTP %d", self.url, response.status)
        if response.status < 300:
            return response
        headers = {k.lower(): v for k, v in response.headers.items()}
        try:
            # only numbers are kept of the body (it may echo our headers): the wait it asks for
            text = (await response.content.read(ERROR_BODY_BYTES)).decode("utf-8", "replace")
        except (TimeoutError, aiohttp.ClientError, OSError):
            text = ""
        finally:
            response.close()
        raise UpstreamError(
            status=response.status, retry_after_s=_retry_after_s(headers, text), headers=headers
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        """Stream one completion; see :class:`npcbridge.providers.base.Provider`."""
        kwargs = self._arguments(request)
        kwargs["stream"] = True
        response = await self._open(json.dumps(kwargs, ensure_ascii=False).encode())
        headers = {k.lower(): v for k, v in response.headers.items()}
        state = _StreamState()
        decoder = _Utf8Decoder("replace")
        try:
            # Parse every complete line of each network read, then yield the read's events with
            # neighbouring text merged: the tokens that arrived together go down the pipeline
            # (transforms, frames) as one delta instead of one per token. The chunks are parsed
            # here with json.loads: typed chunk objects cost more CPU than the rest of a turn.
            rest = ""
            async for data in response.content.iter_chunked(READ_BYTES):
                text = decoder.decode(data)
                lines = (rest + text).split("\n")
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
            rest += decoder.decode(b"", True)
            if rest:
                for event in _merged(state.lines([rest, ""])):
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
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamError("upstream timed out mid-stream", timeout=True) from None
        except Exception as exc:  # the HTTP layer's own errors (connection reset, bad chunk)
            raise UpstreamError(
                f"upstream stream broke: {type(exc).__name__}", reason=Reason.CUT
            ) from None
        finally:
            # read to its end, the connection goes back to the pool; else (an early close of
            # the iterator: a cancelled turn) it is closed, which ends the upstream's request
            if response.content.at_eof():
                response.release()
            else:
                response.close()
        yield StreamDone(finish=state.finish, usage=state.usage, headers=headers)


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
        self.data: list[str] = []
        self.done = False
        self.error: UpstreamError | None = None
        #: chunks decoded so far
        self.chunks = 0
        #: the stream reached its end: ``[DONE]`` or a chunk with a ``finish_reason``
        self.ended = False

    def lines(self, lines: list[str]) -> list[StreamEvent]:
        """The events of some complete SSE lines (``data:`` events end at a blank line)."""
        events: list[StreamEvent] = []
        for line in lines:
            if line.endswith("\r"):
                line = line[:-1]
            if line.startswith("data:"):
                self.data.append(line[6:] if line.startswith("data: ") else line[5:])
                if line[-1:] != "}" and line[-1:] != "]":
                    continue  # possibly a multi-line event: wait for the blank line
            elif line or not self.data:
                continue  # "event:", "id:", comments, keep-alive blank lines
            payload = self.data[0] if len(self.data) == 1 else "\n".join(self.data)
            self.data = []
            if payload == "[DONE]":
                # read on to the end of the body, so the connection goes back to the pool
                self.done = self.ended = True
            if self.done:
                continue
            try:
                chunk = json.loads(payload)
            except ValueError:
                chunk = _NOT_JSON
            try:
                events.extend(self.feed(chunk))
            except UpstreamError as exc:
                self.error = exc  # raised after the text that came before it
                self.done = True
        return events

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
        if isinstance(usage, dict):
            self.usage = Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
        elif isinstance(groq, dict) and isinstance(groq.get("usage"), dict):
            u = groq["usage"]
            self.usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    events.append(TextDelta(content))
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") or {}
                    events.append(
                        ToolCallDelta(
                            index=call.get("index", 0),
                            id=call.get("id"),
                            name=fn.get("name"),
                            arguments=fn.get("arguments") or "",
                        )
                    )
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.ended = True
        if isinstance(groq, dict) and groq.get("error"):
            raise UpstreamError(reason=Reason.STREAM_ERROR, status=_error_status(groq["error"]))
        return events


def _error_status(error: Any) -> int | None:
    """The HTTP status an in-stream error object carries (``status_code``, e.g. 400 for a
    request the upstream refuses: final, never retried), or None (a failure worth retrying)."""
    status = error.get("status_code") if isinstance(error, dict) else None
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return None


#: a stream's decoder: bytes split across reads are joined, invalid ones replaced (a binary
#: body then fails as a body that is not a completion stream)
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")

#: stands for an event whose data is not JSON (feed() refuses anything but an object)
_NOT_JSON = object()
