"""Any OpenAI-compatible upstream's chat completions (Groq by default), streamed over aiohttp.

The request is one POST of a JSON body and the answer an SSE stream (:mod:`.sse` reads it), so
the provider sends it with aiohttp itself instead of through the ``openai`` SDK: the SDK's
per-request path (request options, its HTTP library's request, URL and header objects, then
the transport's) cost more CPU than the rest of the upstream call and delayed the request's
first byte (bench/RESULTS.md). What the SDK did for the request is done here: the bearer key,
the timeouts, the connection pool, the proxy, HTTP status errors and the wait a 429 asks for.
The fake upstream the tests run against is itself checked with the SDK
(tests/test_fake_upstream*.py).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import certifi
import orjson

from ..process import add_secret
from .base import ProviderRequest, Reason, StreamDone, StreamEvent, UpstreamError
from .sse import StreamState, merged

#: the most bytes of the body taken at once: a backlog of tokens goes down the pipeline in
#: pieces of this size, so no one delta holds a long reply's text while a client's outbox
#: counts it (server/outbox.py) and other streams run between the pieces
READ_BYTES = 16384

#: a network read at least this long (bytes) is a backlog: the stream yields to the loop
BACKLOG_BYTES = 8192

#: open connections to the upstream at most (each streaming reply holds one), and how long an
#: idle one is kept for the next request: the openai SDK's own pool limits
MAX_CONNECTIONS = 1000
KEEPALIVE_S = 5.0

#: who is asking, for the upstream's logs
USER_AGENT = "npcbridge"

#: the part of an error response's body that is read for the wait it asks for
ERROR_BODY_BYTES = 65536

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


def status_failure(status: int, headers: dict[str, str], body_text: str) -> UpstreamError:
    """An HTTP error answer as :class:`UpstreamError` in our own words: the upstream's body
    may echo our headers, so only the status, the headers (lower-cased keys) and the wait it
    asks for (``retry-after``, else Groq's "try again in 1m0.36s" in the body) are kept."""
    after = parse_duration_s(headers.get("retry-after"))
    if after is None:
        match = _TRY_AGAIN.search(body_text)
        after = parse_duration_s(match.group(1)) if match else None
    return UpstreamError(status=status, retry_after_s=after, headers=headers)


def http_timeout(timeout_s: float, connect_timeout_s: float) -> aiohttp.ClientTimeout:
    """A request's timeouts: ``connect_timeout_s`` to open a connection, ``timeout_s`` for a
    free connection of the pool and between two reads of the answer; no limit on a whole
    reply (the gateway's turn deadline is that limit)."""
    return aiohttp.ClientTimeout(
        total=None, connect=timeout_s, sock_connect=connect_timeout_s, sock_read=timeout_s
    )


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` / ``HTTP_PROXY``, unless
    ``NO_PROXY`` covers its host). Read once per provider: aiohttp's ``trust_env`` would read
    the environment and ``~/.netrc`` again for every request, which doubled the CPU of one."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def lower_keys(headers: Any) -> dict[str, str]:
    """A response's headers as a plain dict with lower-cased keys (what the gateway reads)."""
    return {key.lower(): value for key, value in headers.items()}


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
        add_secret(api_key)  # never logged, whoever echoes it (npcbridge.process)
        self.chat_url = f"{base_url.rstrip('/')}/chat/completions"
        self.timeout = http_timeout(timeout_s, connect_timeout_s)
        self.proxy = env_proxy(self.chat_url)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        # made on the first request, inside the event loop that serves it
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS,
                keepalive_timeout=KEEPALIVE_S,
                # the CA bundle the openai SDK trusts too
                ssl=ssl.create_default_context(cafile=certifi.where()),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=self.timeout,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        kwargs["stream"] = True
        return kwargs

    async def _answer(self, request: ProviderRequest) -> aiohttp.ClientResponse:
        """The upstream's 2xx answer to the request, its body not read yet."""
        try:
            response = await self._http().post(
                self.chat_url, data=orjson.dumps(self._arguments(request)), proxy=self.proxy
            )
        except TimeoutError:  # aiohttp's connect and read timeouts are TimeoutErrors
            raise UpstreamError("upstream timed out", timeout=True) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"upstream unreachable: {type(exc).__name__}", reason=Reason.CONNECT
            ) from None
        if response.status < 300:
            return response
        body = b""
        try:
            while len(body) < ERROR_BODY_BYTES:
                piece = await response.content.read(ERROR_BODY_BYTES - len(body))
                if not piece:
                    break
                body += piece
        except (TimeoutError, aiohttp.ClientError):
            pass  # the status and the headers are the answer; the wait may be in them
        finally:
            response.release()
        text = body.decode("utf-8", "replace")
        raise status_failure(response.status, lower_keys(response.headers), text)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        """Stream one completion; see :class:`npcbridge.providers.base.Provider`."""
        response = await self._answer(request)
        headers = lower_keys(response.headers)
        state = StreamState()
        try:
            # Parse every complete line of each network read, then yield the read's events with
            # neighbouring text merged: the tokens that arrived together go down the pipeline
            # (transforms, frames) as one delta instead of one per token.
            rest = b""
            async for data in response.content.iter_chunked(READ_BYTES):
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
        except TimeoutError:
            raise UpstreamError("upstream timed out mid-stream", timeout=True) from None
        except Exception as exc:  # the connection reset, a bad chunk or compressed body
            raise UpstreamError(
                f"upstream stream broke: {type(exc).__name__}", reason=Reason.CUT
            ) from None
        finally:
            # back to the pool when the body was read to its end, else the connection closes
            response.release()
        yield StreamDone(finish=state.finish, usage=state.usage, headers=headers)
