"""A persona written back out: as a ``[npcs.<key>]`` TOML table for the config file, or as a
Character Card V2 that :func:`npcbridge.builtin.persona.persona_from_card` reads back to the
same persona."""

from __future__ import annotations

import json
import re
from typing import Any

from ..protocol.messages import Persona

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
#: persona fields a card carries in its own fields; every other one goes in
#: ``extensions.npcbridge``
_CARD_FIELDS = {"name", "description", "personality", "examples", "knowledge", "system_prompt"}


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name, ensure_ascii=False)


def _value(value: Any) -> str:
    """A TOML value on one line (a JSON string is a valid TOML basic string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise ValueError(f"a persona value of type {type(value).__name__} has no TOML form")


def persona_fields(persona: Persona) -> dict[str, Any]:
    """The persona's set fields as plain data, without the imported ``card``."""
    data = persona.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data.pop("card", None)
    data["name"] = persona.name
    return data


def persona_toml(key: str, persona: Persona) -> str:
    """``[npcs.<key>]`` with every set field; actions as ``[[npcs.<key>.actions]]`` tables."""
    data = persona_fields(persona)
    actions = data.pop("actions", [])
    table = f"npcs.{_key(key)}"
    lines = [f"[{table}]"]
    lines += [f"{_key(name)} = {_value(value)}" for name, value in data.items()]
    for action in actions:
        lines += ["", f"[[{table}.actions]]"]
        lines += [f"{_key(name)} = {_value(value)}" for name, value in action.items()]
    return "\n".join(lines) + "\n"


def persona_card(persona: Persona) -> dict[str, Any]:
    """A Character Card V2 of the persona (what a card has no field for is kept in
    ``data.extensions.npcbridge``)."""
    data = persona_fields(persona)
    examples = list(persona.examples)
    card: dict[str, Any] = {
        "name": persona.name,
        "description": persona.description or "",
        "personality": persona.personality or "",
        "scenario": "",
        "first_mes": examples[0] if examples else "",
        "mes_example": "".join(f"<START>\n{example}\n" for example in examples[1:]),
        "creator_notes": "",
        "system_prompt": persona.system_prompt or "",
        "post_history_instructions": "",
        "alternate_greetings": [],
        "tags": [],
        "creator": "",
        "character_version": "",
        "extensions": {
            "npcbridge": {k: v for k, v in data.items() if k not in _CARD_FIELDS},
        },
    }
    if persona.knowledge:
        card["character_book"] = {
            "entries": [
                {"keys": [], "content": fact, "enabled": True, "insertion_order": i}
                for i, fact in enumerate(persona.knowledge)
            ],
            "extensions": {},
        }
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": card}
