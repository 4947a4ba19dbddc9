"""Gameplay features as a builtin plugin: quests, barks, group scenes and the speaker cut.

It declares the ``[extra.gameplay]`` settings section (:mod:`npcbridge.features.settings`),
serves ``quest.generate``, ``barks.generate`` and the ``scene.*`` messages and announces
``quest``, ``barks`` and ``scenes`` in ``welcome.features``, all through the registration hooks.
On every turn it adds the scene to the prompt (scene turns only) and cuts lines in which the NPC
speaks as someone else (see :mod:`npcbridge.features.speakers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..features.barks import BarkGenerator
from ..features.quest import QUEST_MASTER, QuestGenerator, check_fields, quest_frame
from ..features.scenes import SceneManager, scene_messages, scene_prompt, speaker_names
from ..features.settings import GameplaySettings
from ..features.speakers import SpeakerCut, cut_speaker_lines, make_cut
from ..hookspecs import hookimpl
from ..pipeline import StopReply, ok_frame
from ..protocol.errors import ProtocolError
from ..protocol.messages import (
    BarksGenerate,
    Message,
    QuestGenerate,
    SceneAdd,
    SceneEnd,
    SceneInterrupt,
    SceneRemove,
    SceneSay,
    SceneStart,
)
from ..turn import Turn

log = logging.getLogger("npcbridge.gameplay")

FEATURES = ("quest", "barks", "scenes")


def _names(turn: Turn) -> tuple[list[str], list[str]]:
    own = [turn.npc, turn.persona.name]
    others = [turn.player, *speaker_names(turn)]
    player_name = turn.context.get("player_name")
    if isinstance(player_name, str):
        others.append(player_name)
    return own, others


class Plugin:
    """Per-server state: settings, the quest and bark generators, the scenes."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.configure(GameplaySettings())

    def configure(self, settings: GameplaySettings) -> None:
        """Build the generators and the scene manager for ``settings``."""
        self.settings = settings
        self.quests = QuestGenerator(self.app, settings.quest)
        self.barks = BarkGenerator(self.app, settings.barks)
        self.scenes = SceneManager(self.app, settings.scenes)

    # ------------------------------------------------------------ start-up: registration

    @hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """``[extra.gameplay]``."""
        register("gameplay", GameplaySettings)

    @hookimpl
    def npcbridge_startup(self, app: Any) -> None:
        """Take the validated settings."""
        settings = app.plugin_settings("gameplay")
        assert isinstance(settings, GameplaySettings)
        self.configure(settings)

    @hookimpl
    def npcbridge_register_handlers(self, register: Callable[..., None]) -> None:
        """Serve the feature messages (quests and barks track their own cancellable work)."""
        register("quest.generate", self.on_quest)
        register("barks.generate", self.on_barks)
        register("scene.start", self.on_scene_start)
        register("scene.say", self.on_scene_say)
        register("scene.add", self.on_scene_add)
        register("scene.remove", self.on_scene_remove)
        register("scene.interrupt", self.on_scene_interrupt)
        register("scene.end", self.on_scene_end)

    @hookimpl
    def npcbridge_register_features(self, register: Callable[[str], None]) -> None:
        """Announce ``quest``, ``barks`` and ``scenes``."""
        for feature in FEATURES:
            register(feature)

    async def on_quest(self, session: Any, msg: Message) -> None:
        """``quest.generate`` → ``quest``."""
        assert isinstance(msg, QuestGenerate)
        check_fields(msg.fields or {}, msg.id)
        try:
            persona = self.app.persona(msg.npc, session.npcs) if msg.npc else QUEST_MASTER
        except ProtocolError as exc:
            exc.request_id = msg.id
            raise

        async def run() -> None:
            outcome = await self.quests.generate(msg, persona, session.id)
            session.send(quest_frame(msg.id, outcome))

        session.track(msg.id, run())

    async def on_barks(self, session: Any, msg: Message) -> None:
        """``barks.generate`` → ``barks``."""
        assert isinstance(msg, BarksGenerate)
        npcs = dict(session.npcs)

        async def run() -> None:
            session.send(await self.barks.generate(msg, npcs, session.id))

        session.track(msg.id, run())

    async def on_scene_start(self, session: Any, msg: Message) -> None:
        """``scene.start`` → ``ok``."""
        assert isinstance(msg, SceneStart)
        self.scenes.start(session, msg)
        session.send(ok_frame(msg.id))

    async def on_scene_say(self, session: Any, msg: Message) -> None:
        """``scene.say`` → NPC replies under ``<id>/<n>``, then ``scene.done``."""
        assert isinstance(msg, SceneSay)
        await self.scenes.say(session, msg)

    async def on_scene_add(self, session: Any, msg: Message) -> None:
        """``scene.add`` → ``ok``."""
        assert isinstance(msg, SceneAdd)
        self.scenes.add(session, msg.scene, msg.npc, msg.id)
        session.send(ok_frame(msg.id))

    async def on_scene_remove(self, session: Any, msg: Message) -> None:
        """``scene.remove`` → ``ok``."""
        assert isinstance(msg, SceneRemove)
        self.scenes.remove(session, msg.scene, msg.npc, msg.id)
        session.send(ok_frame(msg.id))

    async def on_scene_interrupt(self, session: Any, msg: Message) -> None:
        """``scene.interrupt`` → ``ok`` (the exchange ends with ``scene.done`` "interrupted")."""
        assert isinstance(msg, SceneInterrupt)
        self.scenes.interrupt(self.scenes.get(session, msg.scene, msg.id))
        session.send(ok_frame(msg.id))

    async def on_scene_end(self, session: Any, msg: Message) -> None:
        """``scene.end`` → ``ok``."""
        assert isinstance(msg, SceneEnd)
        self.scenes.end(session, msg.scene, msg.id)
        session.send(ok_frame(msg.id))

    # ------------------------------------------------------------ per-turn hooks

    @hookimpl
    def npcbridge_persona(self, turn: Turn) -> str | None:
        """Scene turns: who else is present."""
        return scene_prompt(turn) if turn.kind == "scene" else None

    @hookimpl(trylast=True)
    def npcbridge_recall(self, turn: Turn) -> list[dict[str, str]] | None:
        """Scene turns: the transcript so far (after any memory, closest to the line)."""
        return scene_messages(turn) if turn.kind == "scene" else None

    @hookimpl
    def npcbridge_transform_delta(self, turn: Turn, text: str) -> str | None:
        """Speaker cut on the stream; ends the reply once the NPC spoke as someone else."""
        cut = turn.state.get("speaker_cut")
        if cut is None:
            own, others = _names(turn)
            cut = turn.state["speaker_cut"] = make_cut(own, others)
        assert isinstance(cut, SpeakerCut)
        if cut.cut:
            raise StopReply("stop", f"npc {turn.npc} began speaking as {cut.cut_label}")
        return cut.feed(text)

    @hookimpl
    def npcbridge_flush_delta(self, turn: Turn) -> str | None:
        """Release a line start held back at the end of the stream."""
        cut = turn.state.get("speaker_cut")
        return cut.flush() if isinstance(cut, SpeakerCut) else None

    @hookimpl
    def npcbridge_post_process(self, turn: Turn, text: str, finish: str) -> str | None:
        """The same cut on the final text (catches text released by later plugins)."""
        cut = turn.state.get("speaker_cut")
        if isinstance(cut, SpeakerCut) and cut.cut_label:
            log.info("npc=%s speaker cut at %r", turn.npc, cut.cut_label)
        own, others = _names(turn)
        return cut_speaker_lines(text, own, others)
