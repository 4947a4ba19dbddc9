"""Offline replies for when no API key is set: in character, deterministic, paced like a model.

It never claims to be Groq: its model id is ``offline`` and ``welcome.features`` says ``offline``.
Every feature the server announces works offline, with canned content that follows the same
rules as a model's: replies answer the player's line (:func:`offline_reply`), barks are short
ambient lines chosen by the NPC's trade (:func:`offline_bark`), scene replies answer the last
line without its speaker's name, summaries are one plain sentence, and quests are built to
their difficulty's counts by :func:`offline_quest` (used by :mod:`npcbridge.features.quest`
without any request).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

from ..pipeline.turn import Usage
from .base import ProviderRequest, StreamDone, StreamEvent, TextDelta

_OPENERS = (
    "Hm. {name} here.",
    "Well now.",
    "Ah, you again.",
    "Listen closely.",
)


def _last_user_text(request: ProviderRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def _system_text(request: ProviderRequest) -> str:
    return " ".join(
        m["content"]
        for m in request.messages
        if m.get("role") == "system" and isinstance(m.get("content"), str)
    )


#: ambient lines by trade (a word of the persona's description); "" is everyone else's
_BARKS: dict[str, tuple[str, ...]] = {
    "smith": ("Steel doesn't wait. Neither do I.", "Mind the sparks!", "Blades mended, cheap!"),
    "baker": ("Fresh bread! Still warm!", "Rolls, two a copper!", "Who wants a sweet bun?"),
    "guard": ("Keep moving.", "No trouble today, understood?", "Eyes open, all of you."),
    "merchant": ("Fine wares, fair prices!", "Come, have a look!", "Best deals in town!"),
    "inn": ("Rooms upstairs, hot stew below.", "Ale's fresh today!", "Wipe your boots!"),
    "": ("Fine weather, if it holds.", "Now, where was I?", "Busy day. Busy day."),
}
_TRADES = {
    "smith": "smith", "blacksmith": "smith", "forge": "smith", "baker": "baker",
    "bread": "baker", "guard": "guard", "soldier": "guard", "watch": "guard",
    "merchant": "merchant", "trader": "merchant",
    "shop": "merchant", "inn": "inn", "tavern": "inn", "barkeep": "inn",
}  # fmt: skip
_WORD = re.compile(r"[a-z]+")
#: a scene line as the prompt carries it: "Name: text"
_SPEAKER = re.compile(r"^[^:\n]{1,60}:\s+")


def _digest(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16)


def offline_bark(name: str, description: str) -> str:
    """One ambient line for an NPC, chosen by the trade its description names."""
    words = _WORD.findall(description.lower())
    trade = next((_TRADES[w] for w in words if w in _TRADES), "")
    lines = _BARKS[trade]
    return lines[_digest(name) % len(lines)]


def offline_reply(request: ProviderRequest) -> str:
    """Build a short in-character reply from the persona in the system prompt (a bark, a
    scene reply or a summary when ``request.kind`` says so)."""
    name = request.persona_name or "The stranger"
    if request.kind == "bark":
        return offline_bark(name, _system_text(request))
    if request.kind == "summary":
        return f"{name} talked with the player and will remember them."
    said = _last_user_text(request)
    if request.kind == "scene":
        said = _SPEAKER.sub("", said, count=1)
    heard = " ".join(said.split()[:12]).rstrip(".!?")
    digest = _digest(heard)
    opener = _OPENERS[digest % len(_OPENERS)].format(name=name)
    if heard:
        return f'{opener} You say "{heard}"? I am {name}, and I will think on it.'
    return f"{opener} I am {name}. What brings you here?"


_STEPS = (
    "Ask around about {theme}",
    "Find where the trouble started",
    "Gather what you need for the road",
    "Follow the trail to its end",
    "Deal with whoever is behind it",
    "Face the one who leads them",
)


def offline_quest(
    giver: str, theme: str, objectives: int, rewards: int, gold: int, scope: str
) -> dict[str, object]:
    """A canned quest with ``objectives`` objectives and ``rewards`` rewards (the first is
    ``gold`` gold), about ``theme``, as ``giver`` would hand it out."""
    topic = " ".join(theme.split()[:10]).rstrip(".!?") or "a small matter"
    if objectives < 2:
        steps = [f"See to {topic} for {giver}"]
    else:
        steps = [s.format(theme=topic) for s in _STEPS[: objectives - 1]]
        steps.append(f"Return to {giver}")
    items = [f"{gold} gold", "a letter of thanks", "a sturdy pack", "a silver ring"]
    return {
        "title": f"{giver}'s request: {topic}"[:120],
        "description": f"{giver} has work for you: {topic}. It is {scope}."[:2000],
        "objectives": steps[:objectives],
        "rewards": items[:rewards],
    }


def offline_value(schema: object) -> object:
    """The simplest value a declared quest field's JSON schema accepts (``const``, the first
    ``enum`` value, ``default``, the first example, else by ``type`` at its lower bounds). It
    may not satisfy every schema; the quest is validated afterwards as a model's would be."""
    if not isinstance(schema, dict):
        return None
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    for key in ("enum", "examples", "anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return options[0] if key in ("enum", "examples") else offline_value(options[0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", 64))
        return ("unknown " * (low // 8 + 1))[: max(low, min(high, 7))]
    if kind in ("integer", "number"):
        value = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        value = min(value, schema.get("maximum", value))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "array":
        return [offline_value(schema.get("items")) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "object":
        props = schema.get("properties")
        return {k: offline_value(v) for k, v in props.items()} if isinstance(props, dict) else {}
    return None


class OfflineProvider:
    """Streams :func:`offline_reply` word by word at ``tokens_per_s``."""

    name = "offline"

    def __init__(self, tokens_per_s: float = 60.0) -> None:
        self.tokens_per_s = tokens_per_s

    async def aclose(self) -> None:
        """Nothing to release."""

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        """Stream the offline reply; honours ``max_tokens`` (one word = one token)."""
        words = offline_reply(request).split(" ")
        finish = "stop"
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words, finish = words[: request.max_tokens], "length"
        pause = 1.0 / self.tokens_per_s
        for i, word in enumerate(words):
            await asyncio.sleep(pause)
            yield TextDelta(word if i == 0 else " " + word)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in request.messages) // 4
        yield StreamDone(finish=finish, usage=Usage(prompt_tokens, len(words)))
