"""Quest generation: ``quest.generate`` → ``quest``.

* :mod:`.schema` -- what a valid quest is (core fields, difficulties, declared game fields);
* :mod:`.parse` -- reading an answer as JSON or as the plain-text layout;
* :mod:`.prompts` -- the quest designer's instructions;
* :mod:`.generator` -- asking the model: structured output, one repair, plain-text fallback,
  offline quests;
* :mod:`.handler` -- what the feature adds to the server (handler, welcome feature, settings);
* :mod:`.settings` -- ``[extra.gameplay.quest]``.
"""

from __future__ import annotations

from .generator import QuestGenerator, QuestOutcome
from .handler import QuestFeature, quest_frame
from .parse import TEXT_LABELS, parse_json, parse_text
from .prompts import QUEST_MASTER, system_prompt, user_prompt
from .schema import (
    CORE_FIELDS,
    DIFFICULTIES,
    MAX_FIELDS,
    SERVER_FIELDS,
    Difficulty,
    QuestInvalid,
    QuestModel,
    check_fields,
    quest_schema,
    strictify,
    validate_quest,
)
from .settings import QuestSettings

__all__ = [
    "CORE_FIELDS",
    "DIFFICULTIES",
    "MAX_FIELDS",
    "QUEST_MASTER",
    "SERVER_FIELDS",
    "TEXT_LABELS",
    "Difficulty",
    "QuestFeature",
    "QuestGenerator",
    "QuestInvalid",
    "QuestModel",
    "QuestOutcome",
    "QuestSettings",
    "check_fields",
    "parse_json",
    "parse_text",
    "quest_frame",
    "quest_schema",
    "strictify",
    "system_prompt",
    "user_prompt",
    "validate_quest",
]
