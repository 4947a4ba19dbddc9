"""The prompts of ``quest.generate``: the quest designer's instructions and the request."""

from __future__ import annotations

import json
from typing import Any

from ...protocol.messages import Persona, QuestGenerate
from .schema import DIFFICULTIES

#: who gives a quest that names no NPC
QUEST_MASTER = Persona.model_validate(
    {
        "name": "the quest master",
        "description": "The game's storyteller, who writes quests that fit the world.",
    }
)


def _describe_fields(fields: dict[str, dict[str, Any]]) -> str:
    if not fields:
        return ""
    lines = [f'- "{k}": {json.dumps(v, ensure_ascii=False)}' for k, v in fields.items()]
    return "Game fields (also required), each with its JSON schema:\n" + "\n".join(lines)


def system_prompt(msg: QuestGenerate, persona: Persona, layout: str) -> str:
    """The quest designer's instructions; ``layout`` is "json" or "text"."""
    rule = DIFFICULTIES[msg.difficulty]
    fields = msg.fields or {}
    parts = [
        f"You design quests for a game. The quest is given by {persona.name}"
        + (f" ({persona.description})" if persona.description else "")
        + ".",
        f"Difficulty {msg.difficulty}: {rule.scope}. It has {rule.objectives[0]} to "
        f"{rule.objectives[1]} objectives and {rule.rewards[0]} to {rule.rewards[1]} rewards; "
        f"gold rewards are between {rule.gold[0]} and {rule.gold[1]} gold.",
        "Objectives are short imperative steps; rewards are short items such as "
        f"'{rule.gold[0] * 2} gold' or an item name.",
    ]
    if layout == "json":
        parts.append(
            "Answer with one JSON object only, no prose: "
            '{"title": string, "description": string, "objectives": [string], '
            '"rewards": [string]' + "".join(f', "{k}": ...' for k in fields) + "}."
        )
    else:
        parts.append(
            "Answer in exactly this plain-text layout, nothing else:\n"
            "标题: <title>\n描述: <description>\n目标:\n1. <objective>\n奖励: <reward>, <reward>"
            + "".join(f"\n{k}: <value>" for k in fields)
        )
    described = _describe_fields(fields)
    if described:
        parts.append(described)
    return "\n\n".join(parts)


def user_prompt(msg: QuestGenerate) -> str:
    """The request: theme and game context."""
    text = f"Theme: {msg.theme}"
    if msg.context:
        text += "\nGame context: " + json.dumps(msg.context, ensure_ascii=False, sort_keys=True)
    return text


def repair_prompt(problem: str) -> str:
    """The re-ask after an answer that did not validate, quoting why."""
    return f"That answer is not valid: {problem}. Answer again with only the corrected JSON object."
