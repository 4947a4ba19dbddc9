"""Token estimates (about four characters per token) and the window trimmed to a budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..stores.base import TurnRecord

#: per-message overhead of the chat format, in tokens
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """A cheap token estimate: characters / 4, rounded up."""
    return (len(text) + 3) // 4


def message_tokens(message: dict[str, Any]) -> int:
    """Estimated tokens of one chat message (content plus overhead)."""
    content = message.get("content")
    return MESSAGE_OVERHEAD + (estimate_tokens(content) if isinstance(content, str) else 0)


def turn_messages(turn: TurnRecord) -> list[dict[str, str]]:
    """The two chat messages of a stored exchange."""
    return [
        {"role": "user", "content": turn.user_text},
        {"role": "assistant", "content": turn.reply_text},
    ]


def fit_window(turns: Sequence[TurnRecord], budget: int) -> list[TurnRecord]:
    """The newest turns whose messages fit in ``budget`` tokens, oldest first.

    Whole exchanges only: a turn that does not fit ends the window (older turns are left to
    the summaries even when a shorter one would still fit, so the window has no holes).
    """
    kept: list[TurnRecord] = []
    used = 0
    for turn in reversed(turns):
        cost = sum(message_tokens(m) for m in turn_messages(turn))
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    return kept
