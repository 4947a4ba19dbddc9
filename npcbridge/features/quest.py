"""Quest generation: ``quest.generate`` → ``quest``.

1. Ask the model for JSON: ``response_format`` ``json_schema`` with ``strict: true`` when the
   catalog says the model supports it (``ModelEntry.json_schema``), else ``json_object`` with the
   schema described in the prompt.
2. Validate against :class:`QuestModel` (plus the game's own fields, a JSON schema each).
3. On failure ask once more, quoting the validation error (the repair).
4. Still invalid: parse the answers as the seed's plain-text layout (``标题:``/``描述:``/``目标:``/
   ``奖励:``, English labels too), and as a last resort ask for that layout explicitly.

Only a validated quest is ever sent; otherwise the request gets ``error`` ``upstream_error``
naming the rule the answers broke (a parse failure only when no answer parsed at all).
Offline (the chosen model is the ``offline`` provider's) no request is made: a canned quest
(:func:`npcbridge.providers.offline.offline_quest`) is built to the difficulty's counts and
validated like a model's answer (``source`` ``offline``); a declared game field its canned
values cannot satisfy answers ``upstream_error`` with ``retryable: false``.
Difficulty is concrete (see :data:`DIFFICULTIES` and ``docs/features.md``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..protocol.errors import DecodeError, ErrorCode, ProtocolError
from ..protocol.messages import Persona, QuestGenerate
from ..providers.base import ProviderRequest
from ..providers.offline import offline_quest, offline_value
from ..turn import Turn, Usage
from .settings import QuestSettings
from .upstream import Completion, complete

if TYPE_CHECKING:
    from ..app import App
    from ..models import ModelEntry

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


#: The seed's three difficulties, made concrete. A reward written as ``N gold`` must lie in
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

QUEST_MASTER = Persona.model_validate(
    {
        "name": "the quest master",
        "description": "The game's storyteller, who writes quests that fit the world.",
    }
)


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
        if not _FIELD_NAME.match(name) or name in CORE_FIELDS + SERVER_FIELDS:
            raise DecodeError(
                f"quest.generate: field 'fields': {name!r} is not a usable field name",
                request_id=request_id,
            )
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise DecodeError(
                f"quest.generate: field 'fields.{name}': invalid JSON schema: {exc.message}",
                request_id=request_id,
            ) from None


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
    problems = []
    lo, hi = rule.objectives
    if not lo <= len(core.objectives) <= hi:
        problems.append(
            f"objectives: a {difficulty} quest has {lo} to {hi} objectives, "
            f"not {len(core.objectives)}"
        )
    lo, hi = rule.rewards
    if not lo <= len(core.rewards) <= hi:
        problems.append(
            f"rewards: a {difficulty} quest has {lo} to {hi} rewards, not {len(core.rewards)}"
        )
    lo, hi = rule.gold
    for reward in core.rewards:
        for match in _GOLD.finditer(reward):
            amount = int(re.sub(r"[,_]", "", match.group(1)))
            if not lo <= amount <= hi:
                problems.append(
                    f"rewards: gold for a {difficulty} quest is {lo} to {hi}, not {amount}"
                )
    quest: dict[str, Any] = core.model_dump(include=set(CORE_FIELDS))
    for name, schema in fields.items():
        if name not in data:
            problems.append(f"{name}: field required")
            continue
        errors = sorted(Draft202012Validator(schema).iter_errors(data[name]), key=str)
        if errors:
            # the keyword, not jsonschema's message: that one quotes the value
            where = "".join(f"[{p!r}]" for p in errors[0].absolute_path)
            problems.append(f"{name}{where}: breaks its schema's {errors[0].validator!r} rule")
        quest[name] = data[name]
    if problems:
        raise QuestInvalid("; ".join(problems[:5]), rule=True)
    return quest


# ---------------------------------------------------------------- parsing answers


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_json(text: str) -> Any:
    """The JSON value in an answer (tolerates code fences and text around one object)."""
    text = text.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        if start < 0:
            raise QuestInvalid("the answer is not JSON") from None
        try:
            return json.JSONDecoder().raw_decode(text[start:])[0]
        except json.JSONDecodeError as exc:
            raise QuestInvalid(f"the answer is not valid JSON ({exc.msg})") from None


#: plain-text labels (the seed's Chinese ones first) → quest field
TEXT_LABELS: dict[str, str] = {
    "标题": "title",
    "任务名称": "title",
    "名称": "title",
    "title": "title",
    "name": "title",
    "描述": "description",
    "任务描述": "description",
    "简介": "description",
    "description": "description",
    "目标": "objectives",
    "任务目标": "objectives",
    "objectives": "objectives",
    "objective": "objectives",
    "goals": "objectives",
    "奖励": "rewards",
    "任务奖励": "rewards",
    "rewards": "rewards",
    "reward": "rewards",
}
_TEXT_LABEL = re.compile(
    r"^\s*[#>*_\-\s]*\**(?P<label>[^:：*\n]{1,24}?)\**\s*[:：]\**\s*(?P<rest>.*)$"
)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+\s*[.)、．]|[（(]\d+[)）])\s*")
_SPLIT = re.compile(r"\s*[;；、，]\s*|\s*,\s+")


def parse_text(text: str, fields: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Parse the seed's plain-text layout into a candidate quest (not yet validated)::

    标题: The Deep Forge
    描述: Something hammers in the closed mine at night.
    目标:
    1. Enter the mine
    2. Find the forge
    奖励: 250 gold, Brom's old hammer
    """
    labels = dict(TEXT_LABELS)
    labels.update({name.lower(): name for name in fields or {}})
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for raw in _FENCE.sub(lambda m: m.group(1), text).splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _TEXT_LABEL.match(line)
        key = labels.get(match.group("label").strip().lower()) if match else None
        if match and key:
            current = key
            sections.setdefault(key, [])
            rest = match.group("rest").strip()
            if rest:
                sections[key].append(rest)
        elif current is not None:
            sections[current].append(line)
    if not sections:
        raise QuestInvalid("no 标题/描述/目标/奖励 sections found in the text")
    quest: dict[str, Any] = {}
    for key, lines in sections.items():
        if key in ("objectives", "rewards"):
            items: list[str] = []
            for line in lines:
                bare = _BULLET.sub("", line).strip()
                if len(lines) == 1 and not _BULLET.match(line):
                    items.extend(p.strip(" .。") for p in _SPLIT.split(bare) if p.strip(" .。"))
                elif bare:
                    items.append(bare)
            quest[key] = items
        elif key in ("title", "description"):
            quest[key] = " ".join(_BULLET.sub("", ln) for ln in lines).strip()
        else:
            value = " ".join(lines).strip()
            try:
                quest[key] = json.loads(value)
            except json.JSONDecodeError:
                quest[key] = value
    return quest


# ---------------------------------------------------------------- prompts


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


# ---------------------------------------------------------------- the handler


@dataclass
class QuestOutcome:
    """A validated quest and how it was obtained."""

    quest: dict[str, Any]
    source: str
    model: str
    usage: Usage
    cost_usd: float
    attempts: int


class QuestGenerator:
    """Generates quests for one server."""

    def __init__(self, app: App, settings: QuestSettings) -> None:
        self.app = app
        self.settings = settings

    async def _model(self, turn: Turn) -> ModelEntry:
        name = self.settings.model or await self.app.plugins.call(
            "npcbridge_select_model", turn=turn, catalog=self.app.catalog
        )
        return self.app.model_entry(name or self.app.default_model)

    async def generate(self, msg: QuestGenerate, persona: Persona, session_id: str) -> QuestOutcome:
        """Generate and validate one quest, or raise :class:`ProtocolError`.

        ``msg.fields`` were checked with :func:`check_fields` when the request arrived."""
        fields = msg.fields or {}
        context = dict(msg.context or {})
        turn = Turn(
            request_id=msg.id,
            npc=msg.npc or "",
            persona=persona,
            player=str(context.get("player", "")),
            text=user_prompt(msg),
            session_id=session_id,
            context=context,
            urgency=self.settings.urgency,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            stream=False,
            kind="quest",
            app=self.app,
        )
        model = await self._model(turn)
        if model.provider == "offline":
            return self.offline(msg, persona, model.id)
        usage = Usage()
        cost = 0.0
        attempts = 0
        answers: list[str] = []
        last_problem = "no answer"
        #: the last answer that parsed but broke a rule: what the error reports
        rule_problem: str | None = None
        model_id = model.id

        async def ask(
            messages: list[dict[str, Any]], response_format: dict[str, Any] | None
        ) -> str:
            nonlocal cost, attempts, model_id
            request = ProviderRequest(
                model=model.id,
                messages=messages,
                max_tokens=turn.max_tokens,
                temperature=turn.temperature,
                response_format=response_format,
                persona_name=persona.name,
            )
            attempts += 1
            done: Completion = await complete(self.app, turn, model, request)
            usage.input_tokens += done.usage.input_tokens
            usage.output_tokens += done.usage.output_tokens
            cost += done.cost_usd
            model_id = done.model
            answers.append(done.text)
            return done.text

        def outcome(quest: dict[str, Any], source: str) -> QuestOutcome:
            quest["difficulty"] = msg.difficulty
            if msg.npc:
                quest["giver"] = msg.npc
            return QuestOutcome(quest, source, model_id, usage, cost, attempts)

        strict = model.json_schema
        messages = [
            {"role": "system", "content": system_prompt(msg, persona, "json")},
            {"role": "user", "content": turn.text},
        ]
        schema_format = {
            "type": "json_schema",
            "json_schema": {"name": "quest", "strict": True, "schema": quest_schema(fields)},
        }
        fmt: dict[str, Any] = schema_format if strict else {"type": "json_object"}
        try:
            first = await ask(messages, fmt)
        except ProtocolError as exc:
            # a model the catalog believed strict-capable refused the schema: plain JSON mode
            if not (strict and getattr(exc, "upstream_status", None) == 400):
                raise
            fmt = {"type": "json_object"}
            first = await ask(messages, fmt)
        try:
            return outcome(validate_quest(parse_json(first), msg.difficulty, fields), "json")
        except QuestInvalid as exc:
            last_problem = str(exc)
            rule_problem = last_problem if exc.rule else rule_problem
        if self.settings.repair:
            repair = [
                *messages,
                {"role": "assistant", "content": first},
                {
                    "role": "user",
                    "content": f"That answer is not valid: {last_problem}. Answer again with "
                    "only the corrected JSON object.",
                },
            ]
            second = await ask(repair, fmt)
            try:
                return outcome(
                    validate_quest(parse_json(second), msg.difficulty, fields), "repaired"
                )
            except QuestInvalid as exc:
                last_problem = str(exc)
                rule_problem = last_problem if exc.rule else rule_problem
        for answer in reversed(answers):
            try:
                return outcome(
                    validate_quest(parse_text(answer, fields), msg.difficulty, fields), "text"
                )
            except QuestInvalid as exc:
                rule_problem = rule_problem or (str(exc) if exc.rule else None)
        if self.settings.text_fallback:
            plain = [
                {"role": "system", "content": system_prompt(msg, persona, "text")},
                {"role": "user", "content": turn.text},
            ]
            third = await ask(plain, None)
            try:
                return outcome(
                    validate_quest(parse_text(third, fields), msg.difficulty, fields), "text"
                )
            except QuestInvalid as exc:
                last_problem = str(exc)
                rule_problem = rule_problem or (last_problem if exc.rule else None)
        # a model samples: the same request may well succeed when asked again
        raise ProtocolError(
            ErrorCode.UPSTREAM_ERROR,
            f"the model did not produce a valid quest: {rule_problem or last_problem}",
            request_id=msg.id,
            retryable=True,
        )

    def offline(self, msg: QuestGenerate, persona: Persona, model_id: str) -> QuestOutcome:
        """A canned quest (no request), validated like a model's answer; a declared field the
        canned values cannot satisfy is an error that asking again cannot change."""
        rule = DIFFICULTIES[msg.difficulty]
        fields = msg.fields or {}
        giver = persona.name[:1].upper() + persona.name[1:]
        gold = (rule.gold[0] + rule.gold[1]) // 2 // 5 * 5
        data = offline_quest(
            giver, msg.theme, rule.objectives[0], rule.rewards[0], gold, rule.scope
        )
        data.update({name: offline_value(schema) for name, schema in fields.items()})
        try:
            quest = validate_quest(data, msg.difficulty, fields)
        except QuestInvalid as exc:
            raise ProtocolError(
                ErrorCode.UPSTREAM_ERROR,
                f"offline mode cannot write this quest: {exc}; a model (GROQ_API_KEY) can",
                request_id=msg.id,
                retryable=False,
            ) from None
        quest["difficulty"] = msg.difficulty
        if msg.npc:
            quest["giver"] = msg.npc
        return QuestOutcome(quest, "offline", model_id, Usage(), 0.0, 0)


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


__all__ = [
    "DIFFICULTIES",
    "QUEST_MASTER",
    "QuestGenerator",
    "QuestInvalid",
    "QuestModel",
    "parse_json",
    "parse_text",
    "quest_frame",
    "quest_schema",
    "validate_quest",
]
