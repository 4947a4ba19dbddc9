"""Who an NPC is: the :class:`Persona` (sent in ``npc.define`` or set in the config) and the
actions a game lets an NPC take. Every persona field the server reads is a typed field, checked
when the persona arrives; unknown fields stay in ``model_extra`` for plugins."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from .fields import JsonMap, Message, NonNegative, Number
from .voice import VoiceSpec


def _no_parameters() -> JsonMap:
    return {"type": "object", "properties": {}}


class ActionSpec(Message):
    """An action the game lets an NPC take (exposed to the model as a tool)."""

    name: StrictStr = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: StrictStr = ""
    parameters: JsonMap = Field(default_factory=lambda: _no_parameters())


class Persona(Message):
    """Who an NPC is. Unknown fields are kept and available to plugins."""

    name: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr | None = None
    personality: StrictStr | None = None
    speech_style: StrictStr | None = None
    knowledge: list[StrictStr] = Field(default_factory=list)
    examples: list[StrictStr] = Field(default_factory=list)
    model: StrictStr | None = None
    temperature: Number | None = Field(default=None, ge=0, le=2)
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=32768)
    actions: list[ActionSpec] = Field(default_factory=list)
    # what the server does with them: docs/protocol.md (personas), docs/gateway.md (models, budgets)
    #: the model tier this NPC always uses (over the urgency rule)
    tier: Literal["small", "large", "largest"] | None = None
    #: a small-tier turn of this NPC gets the quality tier instead
    quality: StrictBool | None = None
    #: the models tried after the selected one fails (None: the catalog's fallbacks)
    fallbacks: list[StrictStr] | None = None
    #: how long a turn may wait for capacity or back-off (over the urgency's budget)
    latency_budget_ms: NonNegative | None = None
    #: whether replies may come from and go into the response cache
    cacheable: StrictBool | None = None
    #: this NPC's own daily budget
    budget_usd_per_day: NonNegative | None = None
    #: added to the system prompt as is
    system_prompt: StrictStr | None = None
    #: what the NPC talks about (scene turn-taking counts them as what it knows)
    topics: list[StrictStr] | None = None
    #: the Character Card an NPC was imported from, whole (for plugins)
    card: JsonMap | None = None
    #: how the NPC sounds when its replies are spoken (docs/voice.md)
    voice: VoiceSpec | None = None
