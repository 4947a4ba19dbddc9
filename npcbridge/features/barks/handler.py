"""The barks feature, declared in one place: it serves ``barks.generate`` (answered with
``barks``), is announced as ``barks`` and is configured by ``[extra.gameplay.barks]``
(:class:`.settings.BarksSettings`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...protocol.messages import BarksGenerate, Message
from ..connection import Connection
from ..feature import RegisterHandler
from .generator import BarkGenerator
from .settings import BarksSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI


class BarksFeature:
    """``barks.generate`` → ``barks``."""

    name = "barks"

    def __init__(self, api: PluginAPI, settings: BarksSettings) -> None:
        self.generator = BarkGenerator(api, settings)

    def register_handlers(self, register: RegisterHandler) -> None:
        """``barks.generate`` (the request tracks its own cancellable work)."""
        register("barks.generate", self.on_barks)

    async def on_barks(self, session: Connection, msg: Message) -> None:
        """Generate the batch in flight under the id, with the NPCs defined at this moment."""
        assert isinstance(msg, BarksGenerate)
        npcs = dict(session.npcs)

        async def run() -> None:
            session.send(await self.generator.generate(msg, npcs, session.id))

        session.track(msg.id, run())
