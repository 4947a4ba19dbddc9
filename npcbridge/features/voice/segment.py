"""Cutting a reply's text into spoken units while it streams: first a short clause (the NPC
starts talking early), then whole sentences; no unit longer than the synthesis model takes."""

from __future__ import annotations

import re

#: a sentence ends at . ! ? … (and CJK ones), closing quotes/brackets after it, then a space
_SENTENCE = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*(?=\s)")
#: a clause ends at , ; : or a dash, then a space
_CLAUSE = re.compile(r"(?:[,;:]|\s[\u2013\u2014-])(?=\s)")
_WORD = re.compile(r"\S+")


def speakable(text: str) -> bool:
    """Whether ``text`` has anything to say (a letter or a digit)."""
    return any(ch.isalnum() for ch in text)


class Segmenter:
    """Takes streamed text, gives complete spoken units (stripped, never empty)."""

    def __init__(self, first_unit_words: int, max_chars: int) -> None:
        self.first_unit_words = first_unit_words
        self.max_chars = max_chars
        self.buffer = ""
        self.units = 0

    def feed(self, text: str) -> list[str]:
        """The units ``text`` completes."""
        self.buffer += text
        out: list[str] = []
        while (cut := self._cut()) is not None:
            unit, self.buffer = self.buffer[:cut].strip(), self.buffer[cut:]
            if speakable(unit):
                out.append(unit)
                self.units += 1
        return out

    def flush(self) -> list[str]:
        """The stream ended: what is left, as units."""
        out = self.feed(" ")
        rest, self.buffer = self.buffer.strip(), ""
        while rest:
            cut = _split_point(rest, self.max_chars) if len(rest) > self.max_chars else len(rest)
            unit, rest = rest[:cut].strip(), rest[cut:].strip()
            if speakable(unit):
                out.append(unit)
                self.units += 1
        return out

    def _cut(self) -> int | None:
        """Where the next unit of the buffer ends (None: not complete yet)."""
        text = self.buffer
        sentence = _SENTENCE.search(text)
        end = sentence.end() if sentence else None
        if self.units == 0:
            for clause in _CLAUSE.finditer(text):
                if end is not None and clause.end() >= end:
                    break
                if len(_WORD.findall(text[: clause.end()])) >= self.first_unit_words:
                    end = clause.end()
                    break
        if end is not None and end <= self.max_chars:
            return end
        if len(text) > self.max_chars:
            return _split_point(text, self.max_chars)
        return None


def _split_point(text: str, limit: int) -> int:
    """Where to cut a unit that would pass ``limit`` characters: the last clause break, else
    the last space, before it (else at the limit)."""
    head = text[:limit]
    clauses = [m.end() for m in _CLAUSE.finditer(head)]
    if clauses and clauses[-1] > limit // 3:
        return clauses[-1]
    space = head.rfind(" ")
    return space if space > limit // 3 else limit
