"""Barks in batch: ``barks.generate`` → ``barks``.

Short ambient lines ("Fresh bread! Still warm!") for many NPCs from one ``barks.generate``
message. Each NPC's bark is an ordinary pipeline turn of kind ``"bark"`` (persona, memory,
model selection, emote and speaker clean-up all apply) that is not streamed to the client.
They run concurrently, at most ``max_concurrency`` at a time; the gateway's rate limiter paces
the upstream requests, so a batch never exceeds the configured limits. Barks are marked
cacheable, so the gateway's response cache may answer repeats. Every NPC gets its own result or
its own error, and ``results`` keep the order of the request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ...pipeline.turn import Turn
from ...protocol.errors import ProtocolError
from ...protocol.messages import BarkRequest, BarksGenerate
from .settings import BarksSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI
    from ...protocol.messages import Persona

BARK_PROMPT = (
    "(No one is talking to you.) Say one short ambient line that {name} would call out or "
    "mutter right now, in character and fitting the situation: under 15 words, only the line."
)


def _error(frame: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": str(frame.get("code", "internal")),
        "message": str(frame.get("message", "")),
    }
    if frame.get("retry_after_ms") is not None:
        error["retry_after_ms"] = int(frame["retry_after_ms"])
    return error


class BarkGenerator:
    """Generates bark batches for one server."""

    def __init__(self, api: PluginAPI, settings: BarksSettings) -> None:
        self.api = api
        self.settings = settings

    async def one(
        self,
        msg: BarksGenerate,
        index: int,
        item: BarkRequest,
        npcs: dict[str, Persona],
        session_id: str,
    ) -> dict[str, Any]:
        """One NPC's bark result: ``{npc, text}`` or ``{npc, error}``."""
        try:
            persona = self.api.persona(item.npc, npcs)
        except ProtocolError as exc:
            return {"npc": item.npc, "error": {"code": str(exc.code), "message": exc.message}}
        # barks never act: no tools are offered
        persona = persona.model_copy(update={"actions": []})
        frames: list[dict[str, Any]] = []
        turn = Turn(
            request_id=f"{msg.id}/{index}",
            npc=item.npc,
            persona=persona,
            player="",
            text=BARK_PROMPT.format(name=persona.name),
            session_id=session_id,
            context={**(msg.context or {}), **(item.context or {})},
            urgency=self.settings.urgency,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            stream=False,
            emit=frames.append,
            kind="bark",
            cacheable=self.settings.cacheable,
        )
        result = await self.api.turns.run(turn)
        if result is not None:
            await self.api.turns.finish(turn, result)
        errors = [f for f in frames if f.get("type") == "error"]
        if errors:
            return {"npc": item.npc, "error": _error(errors[0])}
        end = next((f for f in frames if f.get("type") == "reply.end"), None)
        if end is None:
            return {"npc": item.npc, "error": {"code": "internal", "message": "no bark"}}
        if end.get("finish") == "cancelled":
            raise asyncio.CancelledError
        if end.get("finish") == "filtered":
            # half a bark is worse than none: moderation stopped it, so it is an error
            return {"npc": item.npc, "error": {"code": "filtered", "message": "bark filtered"}}
        out: dict[str, Any] = {"npc": item.npc, "text": str(end["text"])}
        if end.get("emotes"):
            out["emotes"] = list(end["emotes"])
        if end.get("cached"):
            out["cached"] = True
        return out

    async def generate(
        self, msg: BarksGenerate, npcs: dict[str, Persona], session_id: str
    ) -> dict[str, Any]:
        """The ``barks`` answer for a whole batch (results in request order)."""
        limit = asyncio.Semaphore(self.settings.max_concurrency)

        async def bounded(index: int, item: BarkRequest) -> dict[str, Any]:
            async with limit:
                return await self.one(msg, index, item, npcs, session_id)

        results = await asyncio.gather(*(bounded(i, item) for i, item in enumerate(msg.npcs)))
        return {"type": "barks", "id": msg.id, "results": list(results)}
