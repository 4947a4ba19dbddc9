"""Running group scenes: opening, changing and ending them, and the exchanges.

``scene.say`` starts an *exchange*: the turn-taking policy (:mod:`.ranking`) picks who answers
the player, and NPCs may then answer each other until nobody is addressed or relevant any more,
or the bound (``max_replies`` replies per exchange) is reached. Every NPC reply is an ordinary
pipeline turn of kind ``"scene"`` that streams under its own id, ``"<scene.say id>/<n>"``
(n = 1, 2, …), with ``reply.start``/``reply.end`` naming the speaker (``npc``), the ``scene`` and
the ``parent`` request. The exchange ends with ``scene.done``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ...pipeline.turn import Turn
from ...protocol.errors import DecodeError, ProtocolError
from ...protocol.frames import error_frame, internal_error
from ...protocol.messages import Persona, SceneSay, SceneStart
from ..connection import Connection
from .ranking import choose_first, choose_next
from .scene import STATE_KEY, ConnectionScenes, Line, Scene
from .settings import SceneSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI

log = logging.getLogger("npcbridge.features.scenes")


class SceneManager:
    """The scenes of every connection of one server (state dies with the connection)."""

    def __init__(self, api: PluginAPI, settings: SceneSettings) -> None:
        self.api = api
        self.settings = settings

    @staticmethod
    def scenes(session: Connection) -> dict[str, Scene]:
        """This connection's scenes, by name."""
        return session.plugin_state(ConnectionScenes).by_name

    def get(self, session: Connection, name: str, request_id: Any) -> Scene:
        """A scene by name, or ``bad_request``."""
        scene = self.scenes(session).get(name)
        if scene is None:
            raise DecodeError(
                "field 'scene': no scene of that name; start it first", request_id=request_id
            )
        return scene

    def _persona(self, session: Connection, npc: str, request_id: Any) -> Persona:
        try:
            return self.api.persona(npc, session.npcs)
        except ProtocolError as exc:
            exc.request_id = request_id
            raise

    def start(self, session: Connection, msg: SceneStart) -> None:
        """Open (or replace) a scene."""
        if len(set(msg.npcs)) != len(msg.npcs):
            raise DecodeError("scene.start: field 'npcs': duplicate npc", request_id=msg.id)
        if len(msg.npcs) > self.settings.max_npcs:
            raise DecodeError(
                f"scene.start: field 'npcs': at most {self.settings.max_npcs}", request_id=msg.id
            )
        scenes = self.scenes(session)
        if msg.scene not in scenes and len(scenes) >= self.settings.max_scenes:
            raise DecodeError(
                f"scene.start: at most {self.settings.max_scenes} scenes per connection",
                request_id=msg.id,
            )
        personas = {npc: self._persona(session, npc, msg.id) for npc in msg.npcs}
        old = scenes.get(msg.scene)
        if old is not None:
            self.interrupt(old)
        scenes[msg.scene] = Scene(
            name=msg.scene,
            player=msg.player,
            player_name=msg.player_name or msg.player,
            personas=personas,
            context=dict(msg.context or {}),
            max_replies=msg.max_replies or self.settings.max_replies,
            transcript=deque(maxlen=self.settings.transcript_lines),
        )

    def add(self, session: Connection, name: str, npc: str, request_id: Any) -> None:
        """Add an NPC to a running scene (it may answer from the next line on)."""
        scene = self.get(session, name, request_id)
        if npc in scene.personas:
            return
        if len(scene.personas) >= self.settings.max_npcs:
            raise DecodeError(
                f"scene.add: a scene has at most {self.settings.max_npcs} npcs",
                request_id=request_id,
            )
        scene.personas[npc] = self._persona(session, npc, request_id)

    def remove(self, session: Connection, name: str, npc: str, request_id: Any) -> None:
        """Remove an NPC; its reply in progress ends "cancelled" and the exchange goes on."""
        scene = self.get(session, name, request_id)
        if npc not in scene.personas:
            raise DecodeError("scene.remove: field 'npc': not in the scene", request_id=request_id)
        del scene.personas[npc]
        if scene.speaking == npc and scene.task is not None:
            scene.task.cancel()

    def interrupt(self, scene: Scene) -> None:
        """Stop the running exchange: the reply in progress ends "cancelled", no one else
        answers, and ``scene.done`` says ``stopped: "interrupted"``."""
        if scene.task is not None and not scene.task.done():
            scene.interrupted = True
            scene.task.cancel()

    def end(self, session: Connection, name: str, request_id: Any) -> None:
        """Interrupt and forget a scene."""
        scene = self.get(session, name, request_id)
        self.interrupt(scene)
        del self.scenes(session)[name]

    async def say(self, session: Connection, msg: SceneSay) -> None:
        """Run one exchange (tracked as the ``scene.say`` request); ends with ``scene.done``."""
        scene = self.get(session, msg.scene, msg.id)
        if msg.to is not None and msg.to not in scene.personas:
            raise DecodeError(
                "scene.say: field 'to': that npc is not in the scene", request_id=msg.id
            )
        session.check_text("scene.say", msg.text, msg.id)
        previous = scene.task
        scene.task = session.track(msg.id, self._exchange(session, scene, msg, previous))
        scene.request_id = msg.id
        scene.interrupted = False
        # a new line from the player interrupts NPCs still talking among themselves
        if previous is not None and not previous.done():
            previous.cancel()

    async def _exchange(
        self, session: Connection, scene: Scene, msg: SceneSay, previous: asyncio.Task[Any] | None
    ) -> None:
        replies: list[dict[str, Any]] = []
        stopped = "quiet"
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous], timeout=5)
            bound = msg.max_replies or scene.max_replies
            context = {**scene.context, **(msg.context or {})}
            line = Line(None, scene.player_name, msg.text)
            scene.transcript.append(line)
            speaker = choose_first(scene, msg.text, msg.to) if scene.personas else None
            while speaker is not None:
                if len(replies) >= bound:
                    stopped = "bound"
                    break
                sub_id = f"{msg.id}/{len(replies) + 1}"
                finish, text = await self._reply(
                    session, scene, msg, sub_id, speaker, line, context
                )
                replies.append({"id": sub_id, "npc": speaker, "finish": finish})
                if finish == "error":
                    stopped = "error"
                    break
                if finish == "cancelled" and (scene.interrupted or speaker in scene.personas):
                    stopped = "interrupted"
                    break
                if finish != "cancelled" and text:
                    line = Line(speaker, scene.personas[speaker].name, text)
                    scene.transcript.append(line)
                    scene.spoken[speaker] += 1
                last = line.speaker or speaker
                speaker = choose_next(scene, last, line.text, self.settings.min_relevance)
        except asyncio.CancelledError:
            stopped = "interrupted"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except Exception:  # a bug, not the turn's own failure (that is a finish "error")
            log.exception("scene exchange %r failed", msg.id)
            stopped = "error"
        finally:
            if scene.task is asyncio.current_task():
                scene.task, scene.speaking = None, None
            # the exchange always ends, so the client's scene.say request does
            session.send(
                {
                    "type": "scene.done",
                    "id": msg.id,
                    "scene": scene.name,
                    "replies": replies,
                    "stopped": stopped,
                }
            )

    async def _reply(
        self,
        session: Connection,
        scene: Scene,
        msg: SceneSay,
        sub_id: str,
        speaker: str,
        line: Line,
        context: dict[str, Any],
    ) -> tuple[str, str]:
        """One NPC's streamed reply; returns (finish, final text)."""
        persona = scene.personas[speaker]
        seen: dict[str, Any] = {}

        def emit(frame: dict[str, Any]) -> None:
            kind = frame.get("type")
            if kind in ("reply.start", "reply.end"):
                frame = {**frame, "scene": scene.name, "parent": msg.id}
            if kind in ("reply.end", "error"):
                seen[kind] = frame
            session.send(frame)

        turn = Turn(
            request_id=sub_id,
            npc=speaker,
            persona=persona,
            player=scene.player,
            text=f"{line.name}: {line.text}",
            session_id=session.id,
            context=context,
            urgency=msg.urgency,
            max_tokens=persona.max_tokens,
            temperature=persona.temperature,
            emit=emit,
            kind="scene",
            # the player's own words (turn.text carries the "Name: " label); None when the
            # line was another NPC's
            player_text=line.text if line.speaker is None else None,
        )
        turn.state[STATE_KEY] = scene
        scene.speaking = speaker
        try:
            result = await self.api.turns.run(turn)
        except Exception:  # the pipeline answers the turn's own failures; this is the backstop
            log.exception("scene reply %r failed", sub_id)
            result = None
            if "reply.end" not in seen and "error" not in seen:
                emit(error_frame(internal_error(sub_id)))
            seen["error"] = {}
        finally:
            scene.speaking = None
        if result is not None:
            await self.api.turns.finish(turn, result)
        end = seen.get("reply.end")
        if "error" in seen:
            return "error", ""
        if end is None:
            return "error", ""
        return str(end["finish"]), str(end["text"])
