"""What the fake upstream's suites share: an SDK client pointed at the fake, a one-message
conversation, one streamed completion gathered as the SDK parsed it, and one raw chat request."""

from __future__ import annotations

from typing import Any

import aiohttp
from openai import AsyncOpenAI

from npcbridge.testing.fake_upstream import FakeUpstream

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
