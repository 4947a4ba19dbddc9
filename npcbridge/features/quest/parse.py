"""Reading a model's answer as a candidate quest: JSON (:func:`parse_json`) or the
plain-text layout (:func:`parse_text`). Neither validates; :func:`.schema.validate_quest` does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .schema import QuestInvalid

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


#: plain-text labels (the Chinese ones first) → quest field
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
    """Parse the plain-text layout into a candidate quest (not yet validated)::

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
