"""Who an NPC is: the :class:`Persona` (sent in ``npc.define`` or set in the config) and the
actions a game lets an NPC take. Every persona field the server reads is a typed field, checked
when the persona arrives; unknown fields stay in ``model_extra`` for plugins."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from .fields import JsonMap, Message, NonNegative, Number
from .voice import VoiceSpec

#: the moods an NPC can be in (docs/state.md); ``neutral`` is the resting mood by default
MOODS = ("neutral", "happy", "sad", "angry", "afraid", "surprised", "disgusted")
Mood = Literal["neutral", "happy", "sad", "angry", "afraid", "surprised", "disgusted"]
#: the relationship values an NPC keeps per player, and their ranges (inclusive)
RELATIONSHIP_RANGES: dict[str, tuple[float, float]] = {
    "trust": (-100.0, 100.0),
    "affection": (-100.0, 100.0),
    "familiarity": (0.0, 100.0),
}
Intensity = Annotated[Number, Field(ge=0, le=1)]
Trust = Annotated[Number, Field(ge=-100, le=100)]
Familiarity = Annotated[Number, Field(ge=0, le=100)]


class StateChange(Message):
    """A change of state: a mood felt with an intensity, and relationship amounts. In a
    ``nudge``, a ``say``'s ``effects`` and a world event's ``effects`` the numbers are
    amounts added; in a ``set`` they are the new values."""

    mood: Mood | None = None
    intensity: Annotated[Number, Field(ge=-1, le=1)] | None = None
    trust: Annotated[Number, Field(ge=-200, le=200)] | None = None
    affection: Annotated[Number, Field(ge=-200, le=200)] | None = None
    familiarity: Annotated[Number, Field(ge=-100, le=100)] | None = None


class StateSpec(Message):
    """An NPC's starting state and temperament (``persona.state``); an NPC without it keeps no
    state. Moods, ranges and how the values move: docs/state.md."""

    #: the resting mood (the mood once a felt one has faded) and the starting intensity
    mood: Mood = "neutral"
    intensity: Intensity = 0.0
    #: where the relationship to a player the NPC has not met starts
    trust: Trust = 0.0
    affection: Trust = 0.0
    familiarity: Familiarity = 0.0
    #: how strongly turns, judgements and world events move this NPC (0: never, 2: twice)
    volatility: Annotated[Number, Field(ge=0, le=2)] = 1.0
    #: seconds in which a felt mood's intensity halves (None: ``[extra.state]``'s)
    mood_half_life_s: Annotated[Number, Field(gt=0)] | None = None
    #: whether a small model judges each exchange (None: ``[extra.state] judge``)
    judge: StrictBool | None = None
    #: how each of the NPC's actions moves the state when the NPC takes it: {action: change}
    on_action: dict[StrictStr, StateChange] | None = None


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
    #: mood and relationships the NPC keeps (None: it keeps none; docs/state.md)
    state: StateSpec | None = None
    #: how the NPC sounds when its replies are spoken (docs/voice.md)
    voice: VoiceSpec | None = None
