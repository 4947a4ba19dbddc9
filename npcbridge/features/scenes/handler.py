"""The scenes feature, declared in one place: it serves ``scene.start``, ``scene.say``,
``scene.add``, ``scene.remove``, ``scene.interrupt`` and ``scene.end``, is announced as
``scenes``, is configured by ``[extra.gameplay.scenes]`` (:class:`.settings.SceneSettings`), and
gives scene turns their prompt part and transcript (:meth:`ScenesFeature.persona`,
:meth:`ScenesFeature.recall`, called from the gameplay plugin's per-turn hooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...pipeline.turn import Turn
from ...protocol.frames import ok_frame
from ...protocol.messages import (
    Message,
    SceneAdd,
    SceneEnd,
    SceneInterrupt,
    SceneRemove,
    SceneSay,
    SceneStart,
)
from ..connection import Connection
from ..feature import RegisterHandler
from .manager import SceneManager
from .prompts import scene_messages, scene_prompt
from .settings import SceneSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI


class ScenesFeature:
    """Group scenes: several NPCs and the player in one conversation."""

    name = "scenes"

    def __init__(self, api: PluginAPI, settings: SceneSettings) -> None:
        self.manager = SceneManager(api, settings)

    def register_handlers(self, register: RegisterHandler) -> None:
        """The ``scene.*`` messages."""
        register("scene.start", self.on_start)
        register("scene.say", self.on_say)
        register("scene.add", self.on_add)
        register("scene.remove", self.on_remove)
        register("scene.interrupt", self.on_interrupt)
        register("scene.end", self.on_end)

    async def on_start(self, session: Connection, msg: Message) -> None:
        """``scene.start`` → ``ok``."""
        assert isinstance(msg, SceneStart)
        self.manager.start(session, msg)
        session.send(ok_frame(msg.id))

    async def on_say(self, session: Connection, msg: Message) -> None:
        """``scene.say`` → NPC replies under ``<id>/<n>``, then ``scene.done``."""
        assert isinstance(msg, SceneSay)
        await self.manager.say(session, msg)

    async def on_add(self, session: Connection, msg: Message) -> None:
        """``scene.add`` → ``ok``."""
        assert isinstance(msg, SceneAdd)
        self.manager.add(session, msg.scene, msg.npc, msg.id)
        session.send(ok_frame(msg.id))

    async def on_remove(self, session: Connection, msg: Message) -> None:
        """``scene.remove`` → ``ok``."""
        assert isinstance(msg, SceneRemove)
        self.manager.remove(session, msg.scene, msg.npc, msg.id)
        session.send(ok_frame(msg.id))

    async def on_interrupt(self, session: Connection, msg: Message) -> None:
        """``scene.interrupt`` → ``ok`` (the exchange ends with ``scene.done`` "interrupted")."""
        assert isinstance(msg, SceneInterrupt)
        self.manager.interrupt(self.manager.get(session, msg.scene, msg.id))
        session.send(ok_frame(msg.id))

    async def on_end(self, session: Connection, msg: Message) -> None:
        """``scene.end`` → ``ok``."""
        assert isinstance(msg, SceneEnd)
        self.manager.end(session, msg.scene, msg.id)
        session.send(ok_frame(msg.id))

    @staticmethod
    def persona(turn: Turn) -> str | None:
        """Scene turns: who else is present (a system-prompt part)."""
        return scene_prompt(turn) if turn.kind == "scene" else None

    @staticmethod
    def recall(turn: Turn) -> list[dict[str, str]] | None:
        """Scene turns: the transcript so far."""
        return scene_messages(turn) if turn.kind == "scene" else None
