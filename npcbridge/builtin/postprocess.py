"""Final-text clean-up: trim an unfinished trailing sentence when the reply hit ``max_tokens``."""

from __future__ import annotations

import re

from ..pipeline.turn import Turn
from ..plugin.specs import hookimpl

_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*")
_SPACES = re.compile(r"[ \t]{2,}")


def trim_unfinished(text: str) -> str:
    """Cut text after the last complete sentence; keep it whole when no sentence is complete."""
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return text
    return text[: ends[-1].end()]


@hookimpl(trylast=True)
def npcbridge_post_process(turn: Turn, text: str, finish: str) -> str:
    """Collapse doubled spaces; when cut by the length limit, drop the unfinished sentence."""
    text = _SPACES.sub(" ", text).strip()
    if finish == "length":
        text = trim_unfinished(text)
    return text
