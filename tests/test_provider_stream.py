"""How the chat provider reads an SSE body off the wire: as bytes split at event boundaries,
whatever the network reads cut, a broken UTF-8 byte in a token, and a body the upstream
compressed (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from npcbridge.providers.base import ProviderRequest, StreamDone, TextDelta
from npcbridge.providers.openai_compat import OpenAICompatProvider
from tests.http_helpers import serving_app

Writer = Callable[[web.StreamResponse], Awaitable[None]]


def _event(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


BODY = (
    _event("Steel ")
    + _event("für ")
    + _event("dich.")
    + _event(finish="stop")
    + b"data: [DONE]\n\n"
)


@contextlib.asynccontextmanager
async def _serve(write: Writer, headers: dict[str, str]) -> AsyncIterator[str]:
    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **headers})
        await response.prepare(request)
        await write(response)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    async with serving_app(app) as port:
        yield f"http://127.0.0.1:{port}/v1"


async def _reply(write: Writer, headers: dict[str, str] | None = None) -> tuple[str, str]:
    async with _serve(write, headers or {}) as base_url:
        provider = OpenAICompatProvider(base_url=base_url, api_key="sk-test")
        text, finish = "", ""
        request = ProviderRequest(model="m", messages=[{"role": "user", "content": "hi"}])
        try:
            async for event in provider.stream(request):
                if isinstance(event, TextDelta):
                    text += event.text
                elif isinstance(event, StreamDone):
                    finish = event.finish
        finally:
            await provider.aclose()
        return text, finish


@pytest.mark.parametrize("piece", [1, 3, 7, 64, len(BODY)])
async def test_events_cut_anywhere_by_the_network_read_the_same(piece: int) -> None:
    # a multi-byte character ("ü") and the event boundaries fall inside and between writes
    async def write(response: web.StreamResponse) -> None:
        for start in range(0, len(BODY), piece):
            await response.write(BODY[start : start + piece])

    assert await _reply(write) == ("Steel für dich.", "stop")


async def test_a_broken_utf8_byte_becomes_a_replacement_character_and_the_reply_goes_on() -> None:
    broken = _event("Steel ").replace(b"Steel", b"St\xffel")

    async def write(response: web.StreamResponse) -> None:
        await response.write(broken + _event("here.") + _event(finish="stop"))

    assert await _reply(write) == ("St\ufffdel here.", "stop")


async def test_a_compressed_body_is_decompressed() -> None:
    async def write(response: web.StreamResponse) -> None:
        await response.write(gzip.compress(BODY))

    assert await _reply(write, {"Content-Encoding": "gzip"}) == ("Steel für dich.", "stop")
