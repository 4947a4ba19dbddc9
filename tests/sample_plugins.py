"""Plugins used by the suites (tests/test_plugins.py and others), loaded the way users load
them (``module:attr``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import npcbridge
from npcbridge.pipeline.turn import Turn, TurnResult
from npcbridge.protocol import ErrorCode, ProtocolError


class Shouting:
    """Upper-cases streamed text, refuses a forbidden word, records finished turns."""

    def __init__(self) -> None:
        self.finished: list[TurnResult] = []

    @npcbridge.hookimpl
    async def npcbridge_before_request(self, turn: Turn) -> None:
        await asyncio.sleep(0)  # async hooks are awaited
        if "forbidden" in turn.text:
            raise ProtocolError(ErrorCode.FILTERED, "that topic is off limits")
        turn.text = turn.text.replace("please", "")

    @npcbridge.hookimpl
    def npcbridge_transform_delta(self, text: str) -> str:
        return text.upper()

    @npcbridge.hookimpl
    async def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        self.finished.append(result)


class PickModel:
    """Overrides model selection for one NPC."""

    @npcbridge.hookimpl(tryfirst=True)
    def npcbridge_select_model(self, turn: Turn) -> str | None:
        return "llama-3.3-70b-versatile" if turn.npc == "mage" else None

    @npcbridge.hookimpl
    async def npcbridge_extension(self, message: dict) -> dict | None:
        if message["type"] == "x.echo":
            return {"type": "x.echo", "value": message.get("value")}
        return None


class GroqUnfriendly:
    """Adds parameters and message names that Groq answers with 400."""

    @npcbridge.hookimpl
    def npcbridge_before_request(self, turn: Turn) -> None:
        turn.params.update(logprobs=True, top_logprobs=2, logit_bias={"1": 1}, n=2, top_p=0.5)
        turn.messages.insert(1, {"role": "user", "name": "Tom", "content": "I was here before."})


class SlowHandler:
    """``x.wait`` answers once ``release`` is set; ``x.refuse`` and ``x.crash`` fail."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    @npcbridge.hookimpl
    def npcbridge_register_handlers(self, register) -> None:  # type: ignore[no-untyped-def]
        async def wait(session, message) -> None:  # type: ignore[no-untyped-def]
            await self.release.wait()
            session.send({"type": "x.wait", "id": message.id})

        register("x.wait", wait)

    @npcbridge.hookimpl
    def npcbridge_extension(self, message: dict) -> dict | None:
        if message["type"] == "x.refuse":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "field 'value': not today")
        if message["type"] == "x.crash":
            raise RuntimeError("a plugin bug")
        return None


class ReplyFields:
    """Adds ``mood`` to ``reply.end``, tries to overwrite ``text``, notes one request only."""

    @npcbridge.hookimpl
    def npcbridge_before_request(self, turn: Turn) -> None:
        if turn.context.get("tired"):
            turn.system_parts.append("The player looks tired.")

    @npcbridge.hookimpl
    def npcbridge_reply_fields(self, turn: Turn, result: TurnResult) -> dict:
        return {"mood": "calm", "finish_seen": result.finish, "text": "overwritten"}


class CannedProvider:
    """A provider with its own catalog entries: ``canned-1`` (no tier) and ``canned-small``."""

    name = "canned"

    async def stream(self, request):  # type: ignore[no-untyped-def]
        from npcbridge.providers.base import StreamDone, TextDelta

        yield TextDelta("Canned ")
        yield TextDelta("words.")
        yield StreamDone(finish="stop")

    async def aclose(self) -> None:
        pass

    @npcbridge.hookimpl
    def npcbridge_register_providers(self, register) -> None:  # type: ignore[no-untyped-def]
        from npcbridge.gateway.catalog import ModelEntry, ModelLimits

        register(
            "canned",
            self,
            models=[
                ModelEntry(id="canned-1", input_usd_per_m=1.0, limits=ModelLimits(rpm=7, tpm=900)),
                ModelEntry(id="canned-small", tier="small"),
            ],
        )

    @npcbridge.hookimpl(tryfirst=True)
    def npcbridge_select_model(self, turn: Turn) -> str | None:
        return "canned-1" if turn.context.get("canned") else None


class Settings:
    """Declares ``[extra.sample]``."""

    @npcbridge.hookimpl
    def npcbridge_register_settings(self, register) -> None:  # type: ignore[no-untyped-def]
        from pydantic import BaseModel

        class SampleSettings(BaseModel):
            greeting: str = "hello"
            loudness: int = 1

        register("sample", SampleSettings)


class TakesCoreType:
    """Tries to serve ``say`` itself."""

    @npcbridge.hookimpl
    def npcbridge_register_handlers(self, register) -> None:  # type: ignore[no-untyped-def]
        async def handler(session, message) -> None:  # type: ignore[no-untyped-def]
            return None

        register("say", handler)


class Echo:
    """HTTP routes of every kind: a POST echo, a prefix route, an async route, an admin route."""

    @npcbridge.hookimpl
    def npcbridge_register_routes(self, register, api) -> None:  # type: ignore[no-untyped-def]
        from npcbridge.plugin.http import HttpRequest, HttpResponse

        def echo(request: HttpRequest) -> HttpResponse:
            seen = {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "body": request.body.decode(),
                "x": request.headers.get("x-thing"),
                "trusted": request.trusted,
            }
            return HttpResponse(200, json.dumps(seen).encode())

        async def files(request: HttpRequest) -> HttpResponse:
            await asyncio.sleep(0)
            return HttpResponse(200, request.path.encode(), "text/plain", (("X-Kind", "file"),))

        register("/echo", echo, methods=("GET", "POST"))
        register("/files/", files, prefix=True)
        register("/files/special", lambda request: HttpResponse(200, b"special", "text/plain"))
        register("/secret", lambda request: HttpResponse(200, b"hidden", "text/plain"), admin=True)
        register("/broken", lambda request: (200, "text/plain", b"old style"))


class StateWords:
    """Renders an NPC's state its own way (``npcbridge_render_state``), numbers included."""

    @npcbridge.hookimpl
    def npcbridge_render_state(self, turn: Turn, state: dict[str, Any]) -> str:
        trust = state.get("relationship", {}).get("trust", 0)
        return f"STATE-HOOK mood={state['mood']} trust={trust:g} player={turn.player}"
