"""How the chat provider asks: the request it sends, the connection it keeps for the next one,
and every way of not getting a stream back in our own words (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from npcbridge.providers.base import (
    ProviderRequest,
    Reason,
    StreamDone,
    StreamEvent,
    TextDelta,
    UpstreamError,
)
from npcbridge.providers.openai_compat import OpenAICompatProvider, env_proxy
from tests.http_helpers import serving_app

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REPLY = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Aye."},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
REQUEST = ProviderRequest(
    model="m",
    messages=[{"role": "user", "content": "hi", "name": "Ana"}],
    max_tokens=50,
    temperature=0.5,
    params={"logprobs": True, "top_p": 0.9},
)


async def stream_reply(request: web.Request) -> web.StreamResponse:
    """A whole completion stream."""
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(REPLY)
    await response.write_eof()
    return response


@contextlib.asynccontextmanager
async def upstream(handler: Handler) -> AsyncIterator[str]:
    """An upstream whose ``/v1/chat/completions`` is ``handler``; yields its base URL."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    async with serving_app(app) as port:
        yield f"http://127.0.0.1:{port}/v1"


async def events_of(provider: OpenAICompatProvider) -> list[StreamEvent]:
    """Every event of one stream of :data:`REQUEST`."""
    return [event async for event in provider.stream(REQUEST)]


async def failure_of(base_url: str, **options: Any) -> UpstreamError:
    """The error one stream from ``base_url`` raises."""
    provider = OpenAICompatProvider(base_url=base_url, api_key="sk-test", **options)
    try:
        with pytest.raises(UpstreamError) as info:
            # bounded: a timeout that does not work fails the test instead of hanging it
            await asyncio.wait_for(events_of(provider), 5)
    finally:
        await provider.aclose()
    return info.value


async def test_the_request_carries_the_key_and_a_sanitized_streaming_body() -> None:
    seen: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((dict(request.headers), json.loads(await request.read())))
        return await stream_reply(request)

    async with upstream(handler) as base_url:
        provider = OpenAICompatProvider(base_url=base_url + "/", api_key="sk-test")
        try:
            events = await events_of(provider)
        finally:
            await provider.aclose()
    assert events[0] == TextDelta("Aye.")
    done = events[-1]
    assert isinstance(done, StreamDone) and done.finish == "stop"
    assert done.usage is not None and done.usage.output_tokens == 2
    assert done.headers["content-type"] == "text/event-stream"  # keys lower-cased
    headers, body = seen[0]
    assert headers["Authorization"] == "Bearer sk-test"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "Ana: hi"}],  # Groq refuses messages[].name
        "max_tokens": 50,
        "temperature": 0.5,
        "top_p": 0.9,  # logprobs, which Groq refuses, is dropped
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_the_next_request_reuses_the_connection() -> None:
    peers: list[Any] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return await stream_reply(request)

    async with upstream(handler) as base_url:
        provider = OpenAICompatProvider(base_url=base_url, api_key="sk-test")
        try:
            for _ in range(3):
                await events_of(provider)
        finally:
            await provider.aclose()
    assert len(peers) == 3 and peers[0] is not None and len(set(peers)) == 1, peers


async def test_a_stream_left_early_closes_its_connection_and_the_next_one_works() -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(200):
            await response.write(REPLY.split(b"\n\n")[0] + b"\n\n")
            await asyncio.sleep(0.01)
        return response

    async with upstream(endless) as base_url:
        provider = OpenAICompatProvider(base_url=base_url, api_key="sk-test")
        try:
            for _ in range(2):
                events = provider.stream(REQUEST)
                assert await anext(events) == TextDelta("Aye.")
                await asyncio.wait_for(events.aclose(), 2)  # type: ignore[attr-defined]
        finally:
            await provider.aclose()


@pytest.mark.parametrize(
    ("status", "headers", "body", "retry_after_s"),
    [
        (429, {"Retry-After": "2"}, "{}", 2.0),
        (429, {}, '{"error":{"message":"Please try again in 1m0.36s."}}', 60.36),
        (503, {"X-Ratelimit-Remaining-Requests": "0"}, "<html>down</html>", None),
        (401, {}, '{"error":{"message":"Invalid API Key sk-test"}}', None),
    ],
)
async def test_an_error_status_keeps_its_status_headers_and_wait_and_no_text(
    status: int, headers: dict[str, str], body: str, retry_after_s: float | None
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        # the body in two writes: the wait in it is found wherever the network cuts it
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        half = len(body) // 2
        await response.write(body[:half].encode())
        await asyncio.sleep(0.02)
        await response.write(body[half:].encode())
        await response.write_eof()
        return response

    async with upstream(handler) as base_url:
        error = await failure_of(base_url)
    assert error.status == status and error.reason is Reason.STATUS
    assert error.retry_after_s == retry_after_s
    assert error.retryable is (status != 401)
    assert all(key == key.lower() for key in error.headers)
    assert "sk-test" not in error.public_message and "sk-test" not in str(error)


async def test_a_refused_connection_is_an_unreachable_upstream() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens on it
    error = await failure_of(f"http://127.0.0.1:{port}/v1")
    assert error.reason is Reason.CONNECT and error.retryable


async def test_an_answer_that_stalls_mid_stream_times_out() -> None:
    released = asyncio.Event()

    async def stalls(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(REPLY.split(b"\n\n")[0] + b"\n\n")
        await released.wait()
        return response

    async with upstream(stalls) as base_url:
        error = await failure_of(base_url, timeout_s=0.3)
        released.set()
    assert error.timeout and error.reason is Reason.TIMEOUT


async def test_headers_that_never_come_time_out() -> None:
    released = asyncio.Event()

    async def silent(request: web.Request) -> web.StreamResponse:
        await released.wait()
        return web.Response()

    async with upstream(silent) as base_url:
        error = await failure_of(base_url, timeout_s=0.3)
        released.set()
    assert error.timeout and error.reason is Reason.TIMEOUT


async def test_a_connection_dropped_mid_stream_is_a_cut() -> None:
    async def drops(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(REPLY.split(b"\n\n")[0] + b"\n\n")
        assert request.transport is not None
        request.transport.close()  # no last chunk: the body ends in the middle
        return response

    async with upstream(drops) as base_url:
        error = await failure_of(base_url)
    assert error.reason is Reason.CUT and error.retryable


def test_the_proxy_comes_from_the_environment_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("https_proxy", "http_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert env_proxy("https://api.groq.com/openai/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert env_proxy("https://api.groq.com/openai/v1/chat/completions") == (
        "http://proxy.internal:3128"
    )
    assert env_proxy("http://127.0.0.1:8000/v1/chat/completions") is None  # HTTP_PROXY unset
    monkeypatch.setenv("NO_PROXY", "localhost,.groq.com")
    assert env_proxy("https://api.groq.com/openai/v1/chat/completions") is None


async def test_the_request_goes_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the "proxy" answers the stream itself: the upstream's address is a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        upstream_port = probe.getsockname()[1]
    targets: list[str] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        targets.append(str(request.url))
        return await stream_reply(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    async with serving_app(app) as proxy_port:
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
        provider = OpenAICompatProvider(
            base_url=f"http://127.0.0.1:{upstream_port}/v1", api_key="sk-test"
        )
        try:
            events = await events_of(provider)
        finally:
            await provider.aclose()
    assert events[0] == TextDelta("Aye.")
    assert targets == [f"http://127.0.0.1:{upstream_port}/v1/chat/completions"]
