"""Who an NPC is: the :class:`Persona` (sent in ``npc.define`` or set in the config) and the
actions a game lets an NPC take; the persona fields the server reads from ``model_extra`` are
type-checked here (``PERSONA_OPTIONS``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .fields import JsonMap, Message, NonNegative, Number


def _no_parameters() -> JsonMap:
    return {"type": "object", "properties": {}}


class ActionSpec(Message):
    """An action the game lets an NPC take (exposed to the model as a tool)."""

    name: StrictStr = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: StrictStr = ""
    parameters: JsonMap = Field(default_factory=lambda: _no_parameters())


#: persona fields that are not model fields (they stay in ``model_extra``, where plugins and the
#: gateway read them) but that the server uses: their types are checked when a persona arrives
PERSONA_OPTIONS: dict[str, TypeAdapter[Any]] = {
    "tier": TypeAdapter(Literal["small", "large", "largest"]),
    "quality": TypeAdapter(StrictBool),
    "fallbacks": TypeAdapter(list[StrictStr]),
    "latency_budget_ms": TypeAdapter(NonNegative),
    "cacheable": TypeAdapter(StrictBool),
    "budget_usd_per_day": TypeAdapter(NonNegative),
    "system_prompt": TypeAdapter(StrictStr),
    "topics": TypeAdapter(list[StrictStr]),
    "card": TypeAdapter(JsonMap),
}


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

    @model_validator(mode="after")
    def _check_options(self) -> Persona:
        """The fields the server reads from ``model_extra`` must have their documented type."""
        extra = self.model_extra or {}
        for name, adapter in PERSONA_OPTIONS.items():
            value = extra.get(name)
            if value is None:
                continue
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                raise PydanticCustomError(
                    "persona_option", "{reason}", {"field": name, "reason": first["msg"]}
                ) from None
        return self
