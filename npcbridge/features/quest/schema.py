"""What a valid quest is: the core fields, the difficulty rules, the game's declared fields.

:func:`validate_quest` checks a candidate (from JSON or the plain-text layout) against
:class:`QuestModel`, the difficulty's counts and gold range (:data:`DIFFICULTIES`, see
``docs/features.md``) and each declared field's JSON schema; :func:`quest_schema` is the schema
sent upstream for structured output; :func:`check_fields` refuses unusable field declarations
when the request arrives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...pipeline.actions import schema_problem, unusable_schema
from ...protocol.errors import DecodeError

MAX_FIELDS = 16
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CORE_FIELDS = ("title", "description", "objectives", "rewards")
SERVER_FIELDS = ("difficulty", "giver")


@dataclass(frozen=True)
class Difficulty:
    """What a difficulty means, concretely."""

    objectives: tuple[int, int]
    rewards: tuple[int, int]
    gold: tuple[int, int]
    scope: str


#: The three difficulties, made concrete. A reward written as ``N gold`` must lie in
#: ``gold``; the counts of objectives and rewards are inclusive ranges.
DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(
        objectives=(1, 2),
        rewards=(1, 2),
        gold=(10, 50),
        scope="a short errand near where the player is, little or no danger, about 10 minutes",
    ),
    "medium": Difficulty(
        objectives=(3, 4),
        rewards=(1, 3),
        gold=(50, 200),
        scope="several steps in one region with some fighting or a puzzle, about 30 minutes",
    ),
    "hard": Difficulty(
        objectives=(5, 6),
        rewards=(2, 4),
        gold=(200, 1000),
        scope=(
            "a journey across several places ending with a dangerous final objective "
            "(a boss or a named enemy), about an hour"
        ),
    ),
}

_GOLD = re.compile(r"(\d[\d,_]*)\s*(?:gold|金币|金|gp\b|g\b)", re.IGNORECASE)


class QuestModel(BaseModel):
    """The core of every quest; declared game fields are checked separately (JSON schema)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=2000)
    objectives: list[str] = Field(min_length=1, max_length=12)
    rewards: list[str] = Field(min_length=1, max_length=12)

    @field_validator("objectives", "rewards")
    @classmethod
    def _items(cls, items: list[str]) -> list[str]:
        cleaned = [i.strip() for i in items]
        if any(not i for i in cleaned):
            raise ValueError("items must not be empty")
        if any(len(i) > 300 for i in cleaned):
            raise ValueError("items must be at most 300 characters")
        return cleaned


class QuestInvalid(ValueError):
    """A candidate quest did not validate; the message is fed back to the model. ``rule`` is
    True when the answer parsed and broke a rule (a count, a length, a field's schema), False
    when it could not be read at all."""

    def __init__(self, message: str, *, rule: bool = False) -> None:
        super().__init__(message)
        self.rule = rule


def check_fields(fields: dict[str, dict[str, Any]], request_id: Any) -> None:
    """Reject unusable game field declarations with ``bad_request``."""
    if len(fields) > MAX_FIELDS:
        raise DecodeError(
            f"quest.generate: field 'fields': at most {MAX_FIELDS}", request_id=request_id
        )
    for name, schema in fields.items():
        # the refused name is not repeated; a usable one names its field from here on
        if not _FIELD_NAME.match(name) or name in CORE_FIELDS + SERVER_FIELDS:
            raise DecodeError(
                "quest.generate: field 'fields': a field name is 1 to 40 lowercase letters, "
                "digits or _, starts with a letter, and is not a quest field the server sets",
                request_id=request_id,
            )
        problem = unusable_schema(schema)
        if problem is not None:
            raise DecodeError(
                f"quest.generate: field 'fields.{name}': {problem}", request_id=request_id
            )


def strictify(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` in the form strict structured output requires: every object lists
    all its properties as required and forbids others."""
    out = dict(schema)
    if out.get("type") == "object" and isinstance(out.get("properties"), dict):
        out["properties"] = {k: strictify(v) for k, v in out["properties"].items()}
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strictify(out["items"])
    return out


def quest_schema(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema sent upstream (counts are checked after, not by the schema)."""
    core: dict[str, Any] = {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "objectives": {"type": "array", "items": {"type": "string"}},
        "rewards": {"type": "array", "items": {"type": "string"}},
    }
    return strictify({"type": "object", "properties": {**core, **fields}})


def validate_quest(data: Any, difficulty: str, fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return the validated quest (core + declared fields only) or raise :class:`QuestInvalid`."""
    if not isinstance(data, dict):
        raise QuestInvalid("the answer must be a JSON object")
    try:
        core = QuestModel.model_validate({k: data.get(k) for k in CORE_FIELDS if k in data})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'quest'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise QuestInvalid("; ".join(problems[:5]), rule=True) from None
    rule = DIFFICULTIES[difficulty]
    a_quest = f"{'an' if difficulty[0] in 'aeiou' else 'a'} {difficulty} quest"
    problems = []
    # a count is the server's measure of the answer, not a value the model wrote: it may be said
    lo, hi = rule.objectives
    if not lo <= len(core.objectives) <= hi:
        problems.append(
            f"objectives: {a_quest} has {lo} to {hi} objectives, not {len(core.objectives)}"
        )
    lo, hi = rule.rewards
    if not lo <= len(core.rewards) <= hi:
        problems.append(f"rewards: {a_quest} has {lo} to {hi} rewards, not {len(core.rewards)}")
    lo, hi = rule.gold
    amounts = [
        int(re.sub(r"[,_]", "", match.group(1)))
        for reward in core.rewards
        for match in _GOLD.finditer(reward)
    ]
    if any(not lo <= amount <= hi for amount in amounts):
        # the rule and its range only: error messages never repeat what the model wrote
        problems.append(f"rewards: {a_quest}'s gold lies between {lo} and {hi}")
    quest: dict[str, Any] = core.model_dump(include=set(CORE_FIELDS))
    for name, schema in fields.items():
        if name not in data:
            problems.append(f"{name}: field required")
            continue
        problem = schema_problem(schema, data[name], name)
        if problem is not None:
            problems.append(problem)
        quest[name] = data[name]
    if problems:
        raise QuestInvalid("; ".join(problems[:5]), rule=True)
    return quest
