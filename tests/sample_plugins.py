"""Plugins used by tests/test_plugins.py, loaded the way users load them (``module:attr``)."""

from __future__ import annotations

import asyncio

import npcbridge
from npcbridge.protocol import ErrorCode, ProtocolError
from npcbridge.turn import Turn, TurnResult


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
