"""The quest feature, declared in one place: it serves ``quest.generate`` (answered with
``quest``), is announced as ``quest`` and is configured by ``[extra.gameplay.quest]``
(:class:`.settings.QuestSettings`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...protocol.errors import ProtocolError
from ...protocol.messages import Message, QuestGenerate
from ..connection import Connection
from ..feature import RegisterHandler
from .generator import QuestGenerator, QuestOutcome
from .prompts import QUEST_MASTER
from .schema import check_fields
from .settings import QuestSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI


def quest_frame(request_id: Any, outcome: QuestOutcome) -> dict[str, Any]:
    """The ``quest`` answer."""
    return {
        "type": "quest",
        "id": request_id,
        "quest": outcome.quest,
        "source": outcome.source,
        "model": outcome.model,
        "usage": {
            "input_tokens": outcome.usage.input_tokens,
            "output_tokens": outcome.usage.output_tokens,
        },
        "cost_usd": float(outcome.cost_usd),
    }


class QuestFeature:
    """``quest.generate`` → ``quest``."""

    name = "quest"

    def __init__(self, api: PluginAPI, settings: QuestSettings) -> None:
        self.api = api
        self.generator = QuestGenerator(api, settings)

    def register_handlers(self, register: RegisterHandler) -> None:
        """``quest.generate`` (the request tracks its own cancellable work)."""
        register("quest.generate", self.on_quest)

    async def on_quest(self, session: Connection, msg: Message) -> None:
        """Check the declared fields and the giver, then generate in flight under the id."""
        assert isinstance(msg, QuestGenerate)
        check_fields(msg.fields or {}, msg.id)
        try:
            persona = self.api.persona(msg.npc, session.npcs) if msg.npc else QUEST_MASTER
        except ProtocolError as exc:
            exc.request_id = msg.id
            raise

        async def run() -> None:
            outcome = await self.generator.generate(msg, persona, session.id)
            session.send(quest_frame(msg.id, outcome))

        session.track(msg.id, run())
