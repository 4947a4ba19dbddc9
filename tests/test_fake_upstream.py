"""Tests of the shared fake upstream, driven by the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from npcbridge.testing.fake_upstream import (
    GARBAGE_BODIES,
    STAMP_PLACEHOLDER,
    FakeUpstream,
    Reply,
    ToolCall,
    count_prompt_tokens,
    parse_directives,
    parse_stamps,
    stamped_reply,
    tokenize,
)

MODEL = "llama-3.1-8b-instant"


def client_for(fake: FakeUpstream, **kwargs: Any) -> AsyncOpenAI:
    """An SDK client pointed at ``fake`` that never retries."""
    kwargs.setdefault("max_retries", 0)
    return AsyncOpenAI(base_url=fake.base_url, api_key="test", **kwargs)


def user(text: str) -> list[dict[str, Any]]:
    """A one-message conversation."""
    return [{"role": "user", "content": text}]


async def collect(
    fake: FakeUpstream, text: str, client: AsyncOpenAI | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Stream one completion and gather what the SDK parsed."""
    own_client = client is None
    client = client or client_for(fake)
    stream = await client.chat.completions.create(
        model=kwargs.pop("model", MODEL), messages=user(text), stream=True, **kwargs
    )
    out: dict[str, Any] = {"content": "", "chunks": [], "finish": None, "tools": {}}
    async for chunk in stream:
        out["chunks"].append(chunk)
        for choice in chunk.choices:
            if choice.delta.content:
                out["content"] += choice.delta.content
            for tc in choice.delta.tool_calls or []:
                slot = out["tools"].setdefault(tc.index, {"id": None, "name": "", "args": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["args"] += tc.function.arguments
            if choice.finish_reason:
                out["finish"] = choice.finish_reason
    if own_client:
        await client.close()
    return out


async def test_streaming_text_and_groq_usage(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply(text="Greetings, traveller. The inn is north."))
    out = await collect(fake_upstream, "hello")
    chunks = out["chunks"]
    assert out["content"] == "Greetings, traveller. The inn is north."
    assert out["finish"] == "stop"
    first, last = chunks[0], chunks[-1]
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert first.model_extra["x_groq"]["id"].startswith("req_")
    assert {c.id for c in chunks} == {first.id} and first.id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    # one chunk per word: role + 6 content + final
    assert len(chunks) == 8
    usage = last.model_extra["x_groq"]["usage"]
    expected_prompt = count_prompt_tokens(user("hello"))
    assert usage["prompt_tokens"] == expected_prompt == len("hello") // 4 + 1
    assert usage["completion_tokens"] == 6
    assert usage["total_tokens"] == expected_prompt + 6
    for key in ("queue_time", "prompt_time", "completion_time", "total_time"):
        assert isinstance(usage[key], float)
    assert last.usage is None  # no include_usage -> no top-level usage
    assert fake_upstream.last_usage == usage
    assert fake_upstream.completed == 1 and fake_upstream.disconnects == 0
    record = fake_upstream.requests[0]
    assert record.path == "/v1/chat/completions"
    assert record.body["stream"] is True and record.model == MODEL
    assert record.headers["authorization"] == "Bearer test"
    assert record.usage == usage and record.outcome == "completed"


async def test_include_usage_chunk(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script("one two three")
    out = await collect(fake_upstream, "hi", stream_options={"include_usage": True})
    final, usage_chunk = out["chunks"][-2], out["chunks"][-1]
    assert final.choices[0].finish_reason == "stop"
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 3
    assert usage_chunk.usage.prompt_tokens == fake_upstream.last_usage["prompt_tokens"]
    assert usage_chunk.usage.total_tokens == usage_chunk.usage.prompt_tokens + 3


async def test_tool_calls_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(
        Reply(
            text="Take it.",
            tool_calls=[
                ToolCall("give_item", {"item": "sword", "count": 2}),
                {"name": "emote", "arguments": {"kind": "bow"}, "id": "call_fixed"},
            ],
        )
    )
    out = await collect(fake_upstream, "give me a sword")
    assert out["content"] == "Take it."
    assert out["finish"] == "tool_calls"
    tools = out["tools"]
    assert tools[0]["name"] == "give_item"
    assert json.loads(tools[0]["args"]) == {"item": "sword", "count": 2}
    assert tools[0]["id"].startswith("call_")
    assert tools[1] == {"id": "call_fixed", "name": "emote", "args": '{"kind": "bow"}'}
    # arguments arrive in several pieces
    pieces = [
        c
        for c in out["chunks"]
        if c.choices
        and c.choices[0].delta.tool_calls
        and c.choices[0].delta.tool_calls[0].index == 0
    ]
    assert len(pieces) > 2


async def test_non_streaming(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    fake_upstream.script(Reply(text="Aye.", tool_calls=[ToolCall("wave")]))
    result = await client.chat.completions.create(model=MODEL, messages=user("hello"))
    choice = result.choices[0]
    assert choice.message.content == "Aye."
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == "wave"
    assert result.usage is not None and result.usage.completion_tokens == 2
    assert result.object == "chat.completion"
    await client.close()


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


async def test_ttft_knob(fake_upstream: FakeUpstream) -> None:
    fake_upstream.ttft_ms = 200
    client = client_for(fake_upstream)
    started = time.monotonic()
    stream = await client.chat.completions.create(model=MODEL, messages=user("hi"), stream=True)
    first_content = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first_content = time.monotonic() - started
            break
    await stream.close()
    assert first_content is not None
    assert 0.2 <= first_content < 1.5
    await client.close()


async def test_tokens_per_s_pacing(fake_upstream: FakeUpstream) -> None:
    fake_upstream.tokens_per_s = 100
    started = time.monotonic()
    out = await collect(fake_upstream, "[[words:30]]")
    elapsed = time.monotonic() - started
    assert len(out["content"].split()) == 30
    assert 0.28 <= elapsed < 2.0  # 30 tokens at 100/s, first one immediate


async def test_stamp_tokens_marks_arrival_and_send_time(fake_upstream: FakeUpstream) -> None:
    fake_upstream.tokens_per_s = 100
    fake_upstream.ttft_ms = 30
    fake_upstream.reply_fn = stamped_reply(5)
    fake_upstream.stamp_tokens = True
    before = time.monotonic_ns()
    out = await collect(fake_upstream, "hi")
    after = time.monotonic_ns()
    stamps = parse_stamps(out["content"])
    assert len(stamps) == 5 and STAMP_PLACEHOLDER not in out["content"]
    arrivals = {arrival for arrival, _ in stamps}
    assert len(arrivals) == 1 and before < arrivals.pop() < stamps[0][1]
    sent = [s for _, s in stamps]
    assert sent == sorted(sent) and sent[-1] < after
    assert stamps[0][1] - stamps[0][0] >= 30_000_000  # the first token waited ttft_ms
    assert sent[-1] - sent[0] >= 30_000_000  # paced at 100 tokens/s
    # without the knob the placeholder is sent as it is
    fake_upstream.stamp_tokens = False
    assert parse_stamps((await collect(fake_upstream, "hi"))["content"]) == [(0, 0)] * 5


async def test_rate_limit_headers_on_raw_response(fake_upstream: FakeUpstream) -> None:
    fake_upstream.rate_limit_headers["x-ratelimit-reset-requests"] = "2m59.56s"
    client = client_for(fake_upstream)
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=user("hi"), stream=True
    )
    assert raw.headers["x-ratelimit-reset-requests"] == "2m59.56s"
    assert raw.headers["x-ratelimit-remaining-tokens"] == "5990"
    assert raw.headers["content-type"].startswith("text/event-stream")
    stream = raw.parse()
    if inspect.isawaitable(stream):
        stream = await stream
    async for _ in stream:
        pass
    async with client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=user("hi")
    ) as response:
        assert response.headers["x-ratelimit-limit-requests"] == "14400"
        await response.parse()
    await client.close()


async def test_per_model_script(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script("general")
    fake_upstream.script("for the big one", model="llama-3.3-70b-versatile")
    big = await collect(fake_upstream, "x", model="llama-3.3-70b-versatile")
    small = await collect(fake_upstream, "x")
    assert big["content"] == "for the big one"
    assert small["content"] == "general"
    assert fake_upstream.pending_scripts == 0


async def test_default_reply_and_max_tokens(fake_upstream: FakeUpstream) -> None:
    out = await collect(fake_upstream, "Where is the blacksmith?")
    assert out["content"] == "Well met. You said: Where is the blacksmith?."
    long_text = " ".join(f"w{i}" for i in range(40))
    out = await collect(fake_upstream, long_text)
    assert out["content"].endswith("w19.")  # truncated to 20 words
    out = await collect(fake_upstream, "a b c d e", max_tokens=3)
    assert out["content"] == "Well met. You "
    assert out["finish"] == "length"
    assert fake_upstream.last_usage["completion_tokens"] == 3


async def test_directives(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    out = await collect(fake_upstream, "Player says: [[reply:Exactly this, friend.]]")
    assert out["content"] == "Exactly this, friend."

    out = await collect(fake_upstream, 'open it [[tool:open_door:{"door": "north gate"}]]')
    assert out["finish"] == "tool_calls"
    assert out["content"] == "As you wish."
    assert out["tools"][0]["name"] == "open_door"
    assert json.loads(out["tools"][0]["args"]) == {"door": "north gate"}

    out = await collect(fake_upstream, 'mood? [[json:{"mood": "happy", "x": [1, 2]}]]')
    assert json.loads(out["content"]) == {"mood": "happy", "x": [1, 2]}

    with pytest.raises(openai.InternalServerError) as info503:
        await client.chat.completions.create(model=MODEL, messages=user("[[status:503]]"))
    assert info503.value.status_code == 503
    with pytest.raises(openai.RateLimitError) as info429:
        await client.chat.completions.create(model=MODEL, messages=user("[[status:429]]"))
    assert info429.value.response.headers["retry-after"] == "1"

    stream = await client.chat.completions.create(
        model=MODEL, messages=user("[[reply:a b c d e f]] [[cut:2]]"), stream=True
    )
    got = ""
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            got += chunk.choices[0].delta.content or ""
    assert got == "a b "

    # directives only apply to the last user message
    messages = [
        {"role": "user", "content": "[[status:503]]"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "fine"},
    ]
    result = await client.chat.completions.create(model=MODEL, messages=messages)
    assert result.choices[0].message.content == "Well met. You said: fine."
    await client.close()


async def test_slow_directive(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    stream = await client.chat.completions.create(
        model=MODEL, messages=user("[[slow]]"), stream=True
    )
    started = time.monotonic()
    words = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            words += 1
            if words == 4:
                break
    elapsed = time.monotonic() - started
    await stream.close()
    assert 0.25 <= elapsed < 2.0  # 10 tokens/s
    await fake_upstream.wait_disconnect(timeout=2)
    await client.close()


async def test_json_response_format_default(fake_upstream: FakeUpstream) -> None:
    schema = {
        "type": "object",
        "properties": {
            "line": {"type": "string"},
            "mood": {"type": "string", "enum": ["calm", "angry"]},
            "gold": {"type": "integer"},
        },
        "required": ["line", "mood", "gold"],
        "additionalProperties": False,
    }
    out = await collect(
        fake_upstream,
        "hi",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "npc", "schema": schema, "strict": True},
        },
    )
    assert json.loads(out["content"]) == {
        "line": "Well met. You said: hi.",
        "mood": "calm",
        "gold": 0,
    }
    out = await collect(fake_upstream, "hi", response_format={"type": "json_object"})
    assert json.loads(out["content"]) == {"reply": "Well met. You said: hi."}


async def test_groq_rejections(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi", "name": "bob"}]
        )
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=MODEL, messages=user("hi"), logprobs=True)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=MODEL, messages=user("hi"), n=2)
    await client.close()


async def test_models_and_groq_path(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    models = await client.models.list()
    assert MODEL in [m.id for m in models.data]
    groq = AsyncOpenAI(base_url=fake_upstream.groq_base_url, api_key="test", max_retries=0)
    result = await groq.chat.completions.create(model=MODEL, messages=user("hey"))
    assert result.choices[0].message.content == "Well met. You said: hey."
    assert fake_upstream.requests[-1].path == "/openai/v1/chat/completions"
    await client.close()
    await groq.close()


async def test_control_endpoints(fake_upstream: FakeUpstream) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{fake_upstream.url}/_fake/script",
            json=[{"text": "scripted over http"}, {"status": 503}],
        ) as resp:
            assert (await resp.json())["queued"] == 2
        out = await collect(fake_upstream, "x")
        assert out["content"] == "scripted over http"
        async with http.get(f"{fake_upstream.url}/_fake/stats") as resp:
            stats = await resp.json()
        assert stats["completed"] == 1 and stats["pending_scripts"] == 1
        async with http.post(f"{fake_upstream.url}/_fake/reset") as resp:
            assert resp.status == 200
    assert fake_upstream.pending_scripts == 0 and fake_upstream.requests == []


async def test_concurrent_streams(fake_upstream: FakeUpstream) -> None:
    fake_upstream.tokens_per_s = 500
    client = client_for(fake_upstream)
    results = await asyncio.gather(*(collect(fake_upstream, f"n{i}", client) for i in range(50)))
    await client.close()
    assert [r["content"] for r in results] == [f"Well met. You said: n{i}." for i in range(50)]
    assert fake_upstream.completed == 50 and fake_upstream.active_streams == 0


def test_tokenize_and_directives() -> None:
    for text in ["", "a", " lead and trail ", "one  two\nthree", "x" * 9]:
        assert "".join(tokenize(text)) == text
        assert "".join(tokenize(text, chars_per_token=4)) == text
    assert tokenize("one two three") == ["one ", "two ", "three"]
    clean, directives = parse_directives(
        'hi [[reply:Yes]] there [[tool:give:{"a": "]]"}]] [[cut:3]] [[nope]]'
    )
    assert clean == "hi there [[nope]]"
    assert directives == [("reply", "Yes"), ("tool", ("give", {"a": "]]"})), ("cut", "3")]
    assert count_prompt_tokens([{"role": "system", "content": "x" * 10}, *user("abcdef")]) == 6


def test_cli_prints_base_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "npcbridge.testing.fake_upstream", "--port", "0", "--ttft-ms", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["base_url"].startswith("http://127.0.0.1:") and line["base_url"].endswith("/v1")

        async def check() -> str:
            client = AsyncOpenAI(base_url=line["base_url"], api_key="test", max_retries=0)
            result = await client.chat.completions.create(model=MODEL, messages=user("cli"))
            await client.close()
            return result.choices[0].message.content or ""

        assert asyncio.run(check()) == "Well met. You said: cli."
        assert line["pid"] == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_stamp_words_serves_stamped_replies() -> None:
    """What the benchmarks run: ``--stamp-words N`` replies are N stamped tokens."""
    argv = [sys.executable, "-m", "npcbridge.testing.fake_upstream", "--stamp-words", "3"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())

        async def check() -> str:
            client = AsyncOpenAI(base_url=line["base_url"], api_key="test", max_retries=0)
            result = await client.chat.completions.create(model=MODEL, messages=user("x"))
            await client.close()
            return result.choices[0].message.content or ""

        text = asyncio.run(check())
        assert len(text.split()) == 3 and STAMP_PLACEHOLDER in text  # stamps only on streams
        stream_text = asyncio.run(collect_cli(line["base_url"]))
        stamps = parse_stamps(stream_text)
        assert len(stamps) == 3 and all(arrival > 0 and sent >= arrival for arrival, sent in stamps)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


async def collect_cli(base_url: str) -> str:
    client = AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)
    stream = await client.chat.completions.create(model=MODEL, messages=user("x"), stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await client.close()
    return text


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


async def post_chat(
    fake: FakeUpstream, text: str, *, key: str = "test", stream: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """One raw chat request: (status, lower-cased headers, body bytes)."""
    body = {"model": MODEL, "messages": user(text), "stream": stream}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{fake.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, await response.read()


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


async def test_trickle_directive_paces_a_long_reply(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    stream = await client.chat.completions.create(
        model=MODEL, messages=user("[[trickle:0.2]]"), stream=True
    )
    arrivals: list[float] = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
            if len(arrivals) == 4:
                break
    await stream.close()
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert all(0.15 < gap < 0.5 for gap in gaps), gaps
    await fake_upstream.wait_disconnect()
    assert fake_upstream.requests[0].outcome == "disconnected"
    await client.close()
