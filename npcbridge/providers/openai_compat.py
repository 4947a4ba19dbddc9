"""Any OpenAI-compatible upstream through the official ``openai`` SDK (Groq by default)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson

from ..process import add_secret
from .base import ProviderRequest, Reason, StreamDone, StreamEvent, UpstreamError
from .sse import HttpResponse, StreamState, body, merged

#: a network read at least this long (bytes) is a backlog: the stream yields to the loop
BACKLOG_BYTES = 8192

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
                cast_to=HttpResponse,
                content=orjson.dumps(kwargs),
                options={"headers": self._omitted},
                stream=True,
            )
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise sdk_failure(exc) from None
        headers = dict(response.headers.items())  # the keys come lower-cased
        state = StreamState()
        try:
            # Parse every complete line of each network read, then yield the read's events with
            # neighbouring text merged: the tokens that arrived together go down the pipeline
            # (transforms, frames) as one delta instead of one per token.
            rest = b""
            async for data in body(response):
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
                    for event in merged(state.lines(lines)):
                        yield event
                if state.error is not None:
                    raise state.error
                if len(data) >= BACKLOG_BYTES:
                    # aiohttp hands over what it has buffered without yielding to the loop: a
                    # read this large means more is waiting, so let the connection's writer
                    # and the other streams run first (a streaming reply's reads are small)
                    await asyncio.sleep(0)
            if rest:
                for event in merged(state.lines([rest, b""])):
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
