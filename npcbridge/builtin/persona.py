"""The NPC's system prompt from its persona, and Character Card V2 import.

The default rule: stay in character, answer in 1–2 sentences unless the persona says otherwise.
"""

from __future__ import annotations

from typing import Any

from ..pipeline.turn import Turn
from ..plugin.specs import hookimpl
from ..protocol.messages import Persona

RULES = (
    "Stay in character as {name} at all times; never mention being an AI, a model or a game. "
    "Answer in 1-2 sentences unless your persona says otherwise. "
    "Speak only as {name}: never write lines for the player or for other characters. "
    "If you act, describe the action briefly between asterisks, like *nods*."
)


def describe(persona: Persona) -> str:
    """The persona as prompt text."""
    lines = [f"You are {persona.name}."]
    if persona.description:
        lines.append(persona.description)
    if persona.personality:
        lines.append(f"Personality: {persona.personality}")
    if persona.speech_style:
        lines.append(f"Speech style: {persona.speech_style}")
    if persona.knowledge:
        lines.append("What you know:\n" + "\n".join(f"- {k}" for k in persona.knowledge))
    if persona.examples:
        lines.append("How you talk, for example:\n" + "\n".join(f"- {e}" for e in persona.examples))
    if persona.system_prompt:
        lines.append(persona.system_prompt)
    return "\n".join(lines)


def describe_context(context: dict[str, Any]) -> str | None:
    """Game state from ``say.context`` as one prompt line."""
    if not context:
        return None
    parts = [f"{k.replace('_', ' ')}: {v}" for k, v in context.items()]
    return "Current situation (from the game): " + "; ".join(parts)


@hookimpl(trylast=True)
def npcbridge_persona(turn: Turn) -> list[str]:
    """Describe the NPC, the game's situation, and the in-character rules."""
    parts = [describe(turn.persona)]
    situation = describe_context(turn.context)
    if situation:
        parts.append(situation)
    parts.append(RULES.format(name=turn.persona.name))
    return parts


def persona_from_card(card: dict[str, Any]) -> Persona:
    """Import a Character Card V2 (``{"spec": "chara_card_v2", "data": {...}}``, or V1 flat).

    Fields map onto the persona; everything else of the card is kept under ``card`` so plugins
    still see it (unknown card fields are never dropped).
    """
    inner = card.get("data")
    data: dict[str, Any] = inner if isinstance(inner, dict) else card
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("card: field 'data.name' is required")
    description = " ".join(
        s for s in (data.get("description"), data.get("scenario")) if isinstance(s, str) and s
    )
    examples = []
    if isinstance(data.get("mes_example"), str):
        examples = [
            chunk.strip() for chunk in data["mes_example"].split("<START>") if chunk.strip()
        ]
    if isinstance(data.get("first_mes"), str) and data["first_mes"]:
        examples.insert(0, data["first_mes"])
    knowledge = []
    book = data.get("character_book")
    if isinstance(book, dict):
        for entry in book.get("entries") or []:
            if isinstance(entry, dict) and entry.get("enabled", True):
                content = entry.get("content")
                if isinstance(content, str) and content:
                    knowledge.append(content)
    fields: dict[str, Any] = {
        "name": name,
        "description": description or None,
        "personality": data.get("personality") or None,
        "knowledge": knowledge,
        "examples": examples,
        "card": card,
    }
    if isinstance(data.get("system_prompt"), str) and data["system_prompt"]:
        fields["system_prompt"] = data["system_prompt"]
    extensions = data.get("extensions")
    if isinstance(extensions, dict) and isinstance(extensions.get("npcbridge"), dict):
        fields.update(extensions["npcbridge"])
    return Persona.model_validate(fields)
