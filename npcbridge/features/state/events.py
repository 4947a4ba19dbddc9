"""World events: ``world.event`` tells NPCs what happened without the player speaking.

The NPCs told are ``npc``, ``npcs`` or everyone in the open scene ``scene`` of the connection.
Each one remembers it (a long-term memory of importance ``importance``, about ``player`` when the
event names one, else about the world), and an NPC that keeps state is moved by it: by the
event's ``effects``, else by the rules of :mod:`.rules` (scaled by importance / 5). A witness
(``witnesses``, default every NPC told) feels it fully, an NPC that only heard of it half. With
``react: true`` every witness says one short line, a pipeline turn streamed like a reply under
``<id>/<n>`` (its ``reply.start``/``reply.end`` carry ``parent``: the event's id), through the
gateway's rate limits and budgets. The connection that told the event gets a ``state`` frame
(``reason: "event"``) for each NPC it moved, and the ``ok`` answer comes last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...pipeline.turn import Turn
from ...protocol.errors import ErrorCode, ProtocolError
from ...protocol.frames import ok_frame
from ...protocol.messages import Persona, WorldEvent
from ...stores.base import MemoryRecord
from ..connection import Connection
from ..scenes.scene import ConnectionScenes
from .model import changed
from .repository import StateRepository
from .rules import judge_event
from .settings import StateSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI

log = logging.getLogger("npcbridge.state")

#: ``turn.state`` key that marks a reaction turn (its prompt carries the NPC's state)
REACTION_KEY = "npcbridge.state.reaction"
REACTION_PROMPT = (
    "(Something just happened: {event}) Say one short line that {name} would say or mutter "
    "about it right now, in character: under 15 words, only the line."
)
HEARSAY = 0.5


class WorldEvents:
    """Serves ``world.event`` for one server."""

    def __init__(self, api: PluginAPI, settings: StateSettings, repo: StateRepository) -> None:
        self.api = api
        self.settings = settings
        self.repo = repo

    def targets(self, session: Connection, msg: WorldEvent) -> dict[str, Persona]:
        """The NPCs told, by id, checked before anything happens."""
        given = [x for x in (msg.npc, msg.npcs, msg.scene) if x is not None]
        if len(given) != 1:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "give exactly one of 'npc', 'npcs', 'scene'",
                request_id=msg.id,
            )
        if msg.scene is not None:
            scene = session.plugin_state(ConnectionScenes).by_name.get(msg.scene)
            if scene is None:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, "field 'scene': no such scene", request_id=msg.id
                )
            return dict(scene.personas)
        out: dict[str, Persona] = {}
        for npc in [msg.npc] if msg.npc is not None else list(msg.npcs or []):
            try:
                out[npc] = self.api.persona(npc, session.npcs)
            except ProtocolError as exc:
                exc.request_id = msg.id
                raise
        return out

    async def on_event(self, session: Connection, msg: WorldEvent) -> None:
        """Check the event, then remember it, move the state and react, in flight under its
        id (a ``cancel`` stops the reactions)."""
        session.check_text("text", msg.text, msg.id)
        told = self.targets(session, msg)
        witnesses = set(msg.witnesses) if msg.witnesses is not None else set(told)
        if not witnesses <= set(told):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "field 'witnesses': every witness must be one of the NPCs told",
                request_id=msg.id,
            )

        async def run() -> None:
            for npc, persona in told.items():
                saw = npc in witnesses
                await self.remember(npc, msg, saw)
                if persona.state is not None:
                    try:
                        await self.move(npc, persona, msg, saw, session.send)
                    except self.repo.unavailable_errors():
                        # remembered (the memory write waits in the queue), but not felt
                        log.warning("the store is unavailable; npc=%s is not moved", npc)
            reactions: list[dict[str, Any]] = []
            if msg.react:
                reactors = [npc for npc in told if npc in witnesses]
                reactions = await self.react(session, msg, {n: told[n] for n in reactors})
            session.send(ok_frame(msg.id, npcs=list(told), reactions=reactions))

        session.track(msg.id, run())

    async def remember(self, npc: str, msg: WorldEvent, saw: bool) -> None:
        """Keep the event as a long-term memory of ``npc``."""
        store = self.api.store
        if store is None:
            return
        now = time.time()
        text = f"You saw this happen: {msg.text}" if saw else f"You heard that: {msg.text}"
        memory = MemoryRecord(npc, msg.player or "", "fact", text, msg.importance, now, now)
        if self.api.writes is None:
            await store.add_memory(memory)
        else:
            await self.api.writes.write(lambda: store.add_memory(memory))

    async def move(
        self,
        npc: str,
        persona: Persona,
        msg: WorldEvent,
        saw: bool,
        origin: Callable[[dict[str, Any]], None],
    ) -> None:
        """Move ``npc``'s mood (and its relationship to the event's player); the connection
        that told the event (``origin``) hears of the change."""
        spec = persona.state
        assert spec is not None
        scale = float(spec.volatility) * (1.0 if saw else HEARSAY)
        if msg.effects is not None:
            change = msg.effects.model_dump(exclude_none=True)
        else:
            change = judge_event(msg.text)
            scale *= msg.importance / 5
        if not change:
            return
        await self.repo.change(
            npc, spec, msg.player, lambda v: changed(v, change, scale=scale), "event", origin
        )

    async def react(
        self, session: Connection, msg: WorldEvent, reactors: dict[str, Persona]
    ) -> list[dict[str, Any]]:
        """Every reactor's streamed line, at most ``max_reactions`` at once; one
        ``{id, npc, finish}`` per reaction, in order."""
        limit = asyncio.Semaphore(self.settings.max_reactions)

        async def one(index: int, npc: str, persona: Persona) -> dict[str, Any]:
            async with limit:
                return await self.reaction(session, msg, f"{msg.id}/{index}", npc, persona)

        return list(
            await asyncio.gather(
                *(one(i, npc, persona) for i, (npc, persona) in enumerate(reactors.items()))
            )
        )

    async def reaction(
        self, session: Connection, msg: WorldEvent, sub_id: str, npc: str, persona: Persona
    ) -> dict[str, Any]:
        """One NPC's short line about the event, streamed under ``sub_id``."""
        ended: dict[str, Any] = {}

        def emit(frame: dict[str, Any]) -> None:
            if frame.get("type") in ("reply.start", "reply.end"):
                frame = {**frame, "parent": msg.id}
            if frame.get("type") in ("reply.end", "error"):
                ended.setdefault("frame", frame)
            session.send(frame)

        turn = Turn(
            request_id=sub_id,
            npc=npc,
            persona=persona.model_copy(update={"actions": []}),  # a reaction never acts
            player=msg.player or "",
            text=REACTION_PROMPT.format(event=msg.text, name=persona.name),
            session_id=session.id,
            context=dict(msg.context or {}),
            urgency=msg.urgency,
            max_tokens=self.settings.reaction_max_tokens,
            temperature=persona.temperature,
            emit=emit,
            kind="bark",
        )
        turn.state[REACTION_KEY] = True
        result = await self.api.turns.run(turn)
        if result is not None:
            await self.api.turns.finish(turn, result)
        frame = ended.get("frame", {})
        finish = str(frame.get("finish", "error")) if frame.get("type") == "reply.end" else "error"
        return {"id": sub_id, "npc": npc, "finish": finish}
