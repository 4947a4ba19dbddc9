"""Offline replies for when no API key is set: in character, deterministic, paced like a model.

It never claims to be Groq: its model id is ``offline`` and ``welcome.features`` says ``offline``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from ..turn import Usage
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


def offline_reply(request: ProviderRequest) -> str:
    """Build a short in-character reply from the persona in the system prompt."""
    name = request.persona_name or "The stranger"
    heard = " ".join(_last_user_text(request).split()[:12]).rstrip(".!?")
    digest = int(hashlib.sha1(heard.encode()).hexdigest(), 16)
    opener = _OPENERS[digest % len(_OPENERS)].format(name=name)
    if heard:
        return f'{opener} You say "{heard}"? I am {name}, and I will think on it.'
    return f"{opener} I am {name}. What brings you here?"


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
