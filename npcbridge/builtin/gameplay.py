"""Gameplay features as a builtin plugin: quests, barks, group scenes and the speaker cut.

Each feature folder of :mod:`npcbridge.features` declares what it adds (its ``handler``
module: name, settings section, message handlers); this plugin hands those declarations to
the registration hooks: the ``[extra.gameplay]`` settings section (one sub-table per feature,
:class:`~npcbridge.features.settings.GameplaySettings`), the handlers of ``quest.generate``,
``barks.generate`` and the ``scene.*`` messages, and ``quest``, ``barks`` and ``scenes`` in
``welcome.features``. On every turn it adds the scene to the prompt (scene turns only) and cuts
lines in which the NPC speaks as someone else (:mod:`npcbridge.features.speakers`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..features.barks.handler import BarksFeature
from ..features.feature import Feature, RegisterHandler
from ..features.quest.handler import QuestFeature
from ..features.scenes.handler import ScenesFeature
from ..features.settings import GameplaySettings
from ..features.speakers import hooks as speaker_cut
from ..pipeline.turn import Turn
from ..plugin.specs import hookimpl

if TYPE_CHECKING:
    from ..plugin.api import PluginAPI


class Plugin:
    """Per-server state: the settings and the features built from them."""

    def __init__(self, api: PluginAPI) -> None:
        self.api = api
        self.configure(GameplaySettings())

    def configure(self, settings: GameplaySettings) -> None:
        """Build the features for ``settings``."""
        self.settings = settings
        self.quest = QuestFeature(self.api, settings.quest)
        self.barks = BarksFeature(self.api, settings.barks)
        self.scenes = ScenesFeature(self.api, settings.scenes)
        #: in announcement (and handler registration) order
        self.features: tuple[Feature, ...] = (self.quest, self.barks, self.scenes)

    # ------------------------------------------------------------ start-up: registration

    @hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """``[extra.gameplay]``."""
        register("gameplay", GameplaySettings)

    @hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        """Take the validated settings."""
        settings = api.plugin_settings("gameplay")
        assert isinstance(settings, GameplaySettings)
        self.configure(settings)

    @hookimpl
    def npcbridge_register_handlers(self, register: RegisterHandler) -> None:
        """Every feature's message handlers."""
        for feature in self.features:
            feature.register_handlers(register)

    @hookimpl
    def npcbridge_register_features(self, register: Callable[[str], None]) -> None:
        """Announce every feature by its name."""
        for feature in self.features:
            register(feature.name)

    # ------------------------------------------------------------ per-turn hooks

    @hookimpl
    def npcbridge_persona(self, turn: Turn) -> str | None:
        """Scene turns: who else is present."""
        return self.scenes.persona(turn)

    @hookimpl(trylast=True)
    def npcbridge_recall(self, turn: Turn) -> list[dict[str, str]] | None:
        """Scene turns: the transcript so far (after any memory, closest to the line)."""
        return self.scenes.recall(turn)

    @hookimpl
    def npcbridge_transform_delta(self, turn: Turn, text: str) -> str | None:
        """Speaker cut on the stream; ends the reply once the NPC spoke as someone else."""
        return speaker_cut.transform_delta(turn, text)

    @hookimpl
    def npcbridge_flush_delta(self, turn: Turn) -> str | None:
        """Release a line start held back at the end of the stream."""
        return speaker_cut.flush_delta(turn)

    @hookimpl
    def npcbridge_post_process(self, turn: Turn, text: str, finish: str) -> str | None:
        """The same cut on the final text (catches text released by later plugins)."""
        return speaker_cut.post_process(turn, text)
