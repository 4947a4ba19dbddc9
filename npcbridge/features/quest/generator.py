"""Generating one quest: ``quest.generate`` → a validated quest and what it cost.

1. Ask the model for JSON: ``response_format`` ``json_schema`` with ``strict: true`` when the
   catalog says the model supports it (``ModelEntry.json_schema``), else ``json_object`` with the
   schema described in the prompt. A model the catalog believed strict-capable that refuses the
   schema (HTTP 400) is asked again in plain JSON mode.
2. Validate (:func:`.schema.validate_quest`).
3. On failure ask once more, quoting the validation problem (the repair).
4. Still invalid: read the answers as the plain-text layout (``标题:``/``描述:``/``目标:``/
   ``奖励:``, English labels too), and as a last resort ask for that layout explicitly.

Only a validated quest is ever returned; otherwise the request gets ``error`` ``upstream_error``
naming the rule the answers broke (a parse failure only when no answer parsed at all).
Offline (the chosen model is the ``offline`` provider's) no request is made: a canned quest
(:func:`npcbridge.providers.offline.offline_quest`) is built to the difficulty's counts and
validated like a model's answer (``source`` ``offline``); a declared game field its canned
values cannot satisfy answers ``upstream_error`` with ``retryable: false``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ...gateway.errors import upstream_protocol_error
from ...pipeline.turn import Turn, Usage
from ...protocol.errors import ErrorCode, ProtocolError
from ...protocol.messages import Persona, QuestGenerate
from ...providers.base import ProviderRequest, UpstreamError
from ...providers.offline import offline_quest, offline_value
from ..upstream import complete
from .parse import parse_json, parse_text
from .prompts import repair_prompt, system_prompt, user_prompt
from .schema import DIFFICULTIES, QuestInvalid, quest_schema, validate_quest
from .settings import QuestSettings

if TYPE_CHECKING:
    from ...gateway.catalog import ModelEntry
    from ...plugin.api import PluginAPI

Layout = Literal["json", "text"]


@dataclass
class QuestOutcome:
    """A validated quest and how it was obtained."""

    quest: dict[str, Any]
    source: str
    model: str
    usage: Usage
    cost_usd: float
    attempts: int


@dataclass
class Problems:
    """Why no answer validated so far, and which problem the final error names: the rule the
    latest readable JSON answer broke, else the first rule a plain-text reading broke, else the
    problem of the latest new answer (re-reading an earlier answer as text never replaces it)."""

    latest: str = "no answer"
    json_rule: str | None = None
    text_rule: str | None = None

    def note(self, exc: QuestInvalid, layout: Layout, fresh: bool) -> None:
        """Record why one reading of an answer did not validate."""
        if fresh:
            self.latest = str(exc)
        if exc.rule and layout == "json":
            self.json_rule = str(exc)
        elif exc.rule and self.text_rule is None:
            self.text_rule = str(exc)

    @property
    def reason(self) -> str:
        """What the error says the answers got wrong."""
        return self.json_rule or self.text_rule or self.latest


def finished(quest: dict[str, Any], msg: QuestGenerate) -> dict[str, Any]:
    """Add the fields the server sets itself (``difficulty``, ``giver``)."""
    quest["difficulty"] = msg.difficulty
    if msg.npc:
        quest["giver"] = msg.npc
    return quest


@dataclass
class QuestRun:
    """One ``quest.generate`` asking the model: its answers, their cost, and the problems."""

    api: PluginAPI
    msg: QuestGenerate
    persona: Persona
    turn: Turn
    model: ModelEntry
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    attempts: int = 0
    answers: list[str] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    model_id: str = ""
    #: structured output (strict JSON schema) for JSON answers, else plain JSON mode
    strict: bool = False
    json_format: dict[str, Any] = field(default_factory=lambda: {"type": "json_object"})

    def __post_init__(self) -> None:
        self.model_id = self.model.id
        self.strict = self.model.json_schema
        if self.strict:
            schema = quest_schema(self.msg.fields or {})
            self.json_format = {
                "type": "json_schema",
                "json_schema": {"name": "quest", "strict": True, "schema": schema},
            }

    def messages(self, layout: Layout) -> list[dict[str, Any]]:
        """The request in ``layout``: the designer's instructions and the theme."""
        return [
            {"role": "system", "content": system_prompt(self.msg, self.persona, layout)},
            {"role": "user", "content": self.turn.text},
        ]

    async def _complete(
        self, messages: list[dict[str, Any]], response_format: dict[str, Any] | None
    ) -> str:
        request = ProviderRequest(
            model=self.model.id,
            messages=messages,
            max_tokens=self.turn.max_tokens,
            temperature=self.turn.temperature,
            response_format=response_format,
            persona_name=self.persona.name,
        )
        self.attempts += 1
        done = await complete(self.api.turns, self.turn, self.model, request)
        self.usage.input_tokens += done.usage.input_tokens
        self.usage.output_tokens += done.usage.output_tokens
        self.cost_usd += done.cost_usd
        self.model_id = done.model
        self.answers.append(done.text)
        return done.text

    async def ask(
        self, messages: list[dict[str, Any]], response_format: dict[str, Any] | None
    ) -> str:
        """One more answer; an upstream failure ends the request (translated for the client)."""
        try:
            return await self._complete(messages, response_format)
        except UpstreamError as exc:
            raise upstream_protocol_error(exc, self.msg.id) from None

    async def ask_json(self, messages: list[dict[str, Any]]) -> str:
        """The first answer, in JSON; structured output refused (HTTP 400) falls back to plain
        JSON mode for this and every later answer."""
        if not self.strict:
            return await self.ask(messages, self.json_format)
        try:
            return await self._complete(messages, self.json_format)
        except UpstreamError as exc:
            if exc.status != 400:
                raise upstream_protocol_error(exc, self.msg.id) from None
        self.strict, self.json_format = False, {"type": "json_object"}
        return await self.ask(messages, self.json_format)

    def check(
        self, answer: str, layout: Layout, source: str, *, fresh: bool = True
    ) -> QuestOutcome | None:
        """The outcome when ``answer`` read as ``layout`` validates, else None (the problem is
        noted; ``fresh`` is False when an earlier answer is read again)."""
        fields = self.msg.fields or {}
        try:
            data = parse_json(answer) if layout == "json" else parse_text(answer, fields)
            quest = validate_quest(data, self.msg.difficulty, fields)
        except QuestInvalid as exc:
            self.problems.note(exc, layout, fresh)
            return None
        return QuestOutcome(
            finished(quest, self.msg),
            source,
            self.model_id,
            self.usage,
            self.cost_usd,
            self.attempts,
        )


class QuestGenerator:
    """Generates quests for one server."""

    def __init__(self, api: PluginAPI, settings: QuestSettings) -> None:
        self.api = api
        self.settings = settings

    async def _model(self, turn: Turn) -> ModelEntry:
        if self.settings.model:
            return self.api.model_entry(self.settings.model)
        return await self.api.turns.select_model(turn)

    def _turn(self, msg: QuestGenerate, persona: Persona, session_id: str) -> Turn:
        context = dict(msg.context or {})
        return Turn(
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
        )

    async def generate(self, msg: QuestGenerate, persona: Persona, session_id: str) -> QuestOutcome:
        """Generate and validate one quest, or raise :class:`ProtocolError`.

        ``msg.fields`` were checked with :func:`.schema.check_fields` when the request arrived."""
        turn = self._turn(msg, persona, session_id)
        model = await self._model(turn)
        if model.provider == "offline":
            return self.offline(msg, persona, model.id)
        run = QuestRun(self.api, msg, persona, turn, model)
        messages = run.messages("json")
        first = await run.ask_json(messages)
        if (outcome := run.check(first, "json", "json")) is not None:
            return outcome
        if self.settings.repair:
            repair = [
                *messages,
                {"role": "assistant", "content": first},
                {"role": "user", "content": repair_prompt(run.problems.latest)},
            ]
            second = await run.ask(repair, run.json_format)
            if (outcome := run.check(second, "json", "repaired")) is not None:
                return outcome
        # the answers so far may still be readable in the plain-text layout (newest first)
        for answer in reversed(run.answers):
            if (outcome := run.check(answer, "text", "text", fresh=False)) is not None:
                return outcome
        if self.settings.text_fallback:
            third = await run.ask(run.messages("text"), None)
            if (outcome := run.check(third, "text", "text")) is not None:
                return outcome
        # a model samples: the same request may well succeed when asked again
        raise ProtocolError(
            ErrorCode.UPSTREAM_ERROR,
            f"the model did not produce a valid quest: {run.problems.reason}",
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
        return QuestOutcome(finished(quest, msg), "offline", model_id, Usage(), 0.0, 0)
