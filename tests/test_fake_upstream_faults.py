"""The fake upstream's injected faults, as the real ``openai`` SDK sees them: scripted 429s and
5xx, cut streams, client disconnects and stalls, in-stream errors, a stop during a stalled
request, echoed headers (for key-leak tests) and garbage 200 bodies."""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest
from fake_upstream_helpers import MODEL, client_for, collect, post_chat, user

from npcbridge.testing.fake_upstream import (
    GARBAGE_BODIES,
    FakeUpstream,
    Reply,
)


async def test_scripted_429_with_retry_after(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    fake_upstream.script(Reply(status=429, retry_after=3))
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model=MODEL, messages=user("hi"), stream=True)
    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "3"
    assert err.response.headers["x-ratelimit-limit-tokens"] == "6000"
    assert err.body["code"] == "rate_limit_exceeded" and err.body["type"] == "tokens"
    assert "Please try again in 3s" in err.body["message"]
    assert fake_upstream.errors == 1 and fake_upstream.requests[0].outcome == "error"
    # queue consumed: the next request succeeds
    out = await collect(fake_upstream, "again")
    assert out["content"] == "Well met. You said: again."
    await client.close()


@pytest.mark.parametrize("status", [500, 503, 524])
async def test_scripted_server_errors(fake_upstream: FakeUpstream, status: int) -> None:
    client = client_for(fake_upstream)
    fake_upstream.script(Reply(status=status))
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model=MODEL, messages=user("hi"))
    assert info.value.status_code == status
    assert set(info.value.body) >= {"message", "type", "code"}
    assert "retry-after" not in info.value.response.headers
    await client.close()


async def test_cut_after_chunks_raises_in_sdk(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    fake_upstream.script(Reply(text="one two three four five six", cut_after_chunks=3))
    stream = await client.chat.completions.create(model=MODEL, messages=user("x"), stream=True)
    got = ""
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            got += chunk.choices[0].delta.content or ""
    assert got == "one two three "
    assert fake_upstream.requests[0].outcome == "cut"
    assert fake_upstream.disconnects == 0 and fake_upstream.completed == 0
    assert fake_upstream.active_streams == 0
    await client.close()


async def test_disconnect_detection(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    fake_upstream.tokens_per_s = 50
    fake_upstream.script(Reply(text=" ".join(["word"] * 100)))
    stream = await client.chat.completions.create(model=MODEL, messages=user("x"), stream=True)
    seen = 0
    async for _chunk in stream:
        seen += 1
        if seen == 2:
            break
    assert fake_upstream.active_streams == 1
    await stream.close()
    assert await fake_upstream.wait_disconnect(timeout=2) == 1
    assert fake_upstream.disconnects == 1
    await fake_upstream.wait_active_streams(0, timeout=2)
    assert fake_upstream.requests[0].outcome == "disconnected"
    assert fake_upstream.completed == 0
    await client.close()


async def test_stall_then_client_timeout_counts_disconnect(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(
            model=MODEL, messages=user("hello [[stall]]"), stream=True
        )
    assert time.monotonic() - started < 5
    assert await fake_upstream.wait_disconnect(timeout=2) == 1
    await client.close()


async def test_stream_error_event(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    fake_upstream.script(Reply(text="half a reply", stream_error="tool call validation failed"))
    stream = await client.chat.completions.create(model=MODEL, messages=user("x"), stream=True)
    got = ""
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            got += chunk.choices[0].delta.content or ""
    assert got == "half a reply"
    assert info.value.body["code"] == "tool_use_failed"
    assert fake_upstream.requests[0].outcome == "stream_error"
    stream = await client.chat.completions.create(
        model=MODEL, messages=user("[[stream_error:boom]]"), stream=True
    )
    with pytest.raises(openai.APIError, match="boom"):
        async for _ in stream:
            pass
    await client.close()


async def test_stop_with_stalled_request_is_prompt_and_not_a_disconnect() -> None:
    fake = FakeUpstream()
    await fake.start()
    client = client_for(fake, timeout=10)
    task = asyncio.create_task(
        client.chat.completions.create(model=MODEL, messages=user("[[stall]]"), stream=True)
    )
    await fake.wait_requests(1)
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 3
    with pytest.raises(openai.APIConnectionError):
        await task
    assert fake.disconnects == 0
    await client.close()


async def test_echo_headers_in_response_headers_error_bodies_and_stream_errors(
    fake_upstream: FakeUpstream,
) -> None:
    canary = "gsk_canary_0123456789"
    status, headers, body = await post_chat(fake_upstream, "[[echo_headers]] hi", key=canary)
    assert status == 200 and headers["x-echo-authorization"] == f"Bearer {canary}"
    assert canary not in body.decode()  # a normal stream carries no header text
    fake_upstream.script(Reply(status=500, echo_headers=True))
    status, headers, body = await post_chat(fake_upstream, "hi", key=canary)
    message = json.loads(body)["error"]["message"]
    assert status == 500 and f"Bearer {canary}" in message and "request headers:" in message
    fake_upstream.script(Reply(text="", stream_error="bad", echo_headers=True))
    status, headers, body = await post_chat(fake_upstream, "hi", key=canary)
    events = [line for line in body.decode().split("\n") if line.startswith('data: {"error')]
    assert status == 200 and len(events) == 1 and canary in events[0]
    status, headers, body = await post_chat(
        fake_upstream, "[[reply:Hi]] [[groq_error:stopped]] [[echo_headers]]", key=canary
    )
    chunks = [json.loads(line[6:]) for line in body.decode().split("\n") if line[6:7] == "{"]
    assert chunks[-1]["x_groq"]["error"].startswith("stopped request headers:")
    assert canary in chunks[-1]["x_groq"]["error"] and b"[DONE]" not in body
    # the knob: every reply echoes, 401s included
    fake_upstream.echo_headers = True
    fake_upstream.api_key = "other"
    status, headers, body = await post_chat(fake_upstream, "hi", key=canary)
    assert status == 401 and canary in body.decode() and canary in headers["x-echo-authorization"]
    fake_upstream.echo_headers = False
    status, headers, body = await post_chat(fake_upstream, "hi", key=canary)
    assert status == 401 and canary not in body.decode() and "x-echo-authorization" not in headers


@pytest.mark.parametrize("kind", sorted(GARBAGE_BODIES))
async def test_garbage_200_bodies(fake_upstream: FakeUpstream, kind: str) -> None:
    content_type, expected = GARBAGE_BODIES[kind]
    for stream in (True, False):
        status, headers, body = await post_chat(fake_upstream, f"[[garbage:{kind}]]", stream=stream)
        assert status == 200 and body == expected
        assert headers["content-type"].startswith(content_type.split(";")[0])
    fake_upstream.script(Reply(garbage=kind, echo_headers=True))
    status, headers, body = await post_chat(fake_upstream, "hi")
    assert body == expected and headers["x-echo-authorization"] == "Bearer test"
    assert [r.outcome for r in fake_upstream.requests] == ["garbage"] * 3
