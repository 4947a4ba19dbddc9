"""Tests of the shared fake upstream's OpenAI/Groq wire, driven by the real ``openai`` SDK:
streamed text and Groq usage, tool calls, non-streamed answers, rate-limit headers, per-model
scripts, the default reply, directives, JSON response formats, the Groq path and rejections,
the control endpoints, concurrent streams and the tokenizer."""

from __future__ import annotations

import asyncio
import inspect
import json

import aiohttp
import openai
import pytest
from fake_upstream_helpers import MODEL, client_for, collect, user
from openai import AsyncOpenAI

from npcbridge.testing.fake_upstream import (
    FakeUpstream,
    Reply,
    ToolCall,
    count_prompt_tokens,
    parse_directives,
    tokenize,
)


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
