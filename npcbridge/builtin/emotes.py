"""Stage directions (``*smiles*``, ``(sighs)``) leave the spoken text and become ``emote`` events.

It works on the stream: text inside a stage direction is held back until it closes, so
text-to-speech never reads it, and the ``emote`` frame goes out the moment it is complete.
A parenthesis longer than ``MAX_PAREN_WORDS`` words is an aside, not an action, and stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..pipeline.turn import Turn
from ..plugin.specs import hookimpl

MAX_EMOTE_CHARS = 160
MAX_PAREN_WORDS = 6
_CLOSERS = {"*": "*", "(": ")"}
_OPENERS = re.compile(r"[*(]")


@dataclass
class EmoteFilter:
    """Streaming state of one turn: feed pieces, get the speakable text back."""

    opener: str | None = None
    held: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    ends_with_space: bool = True  # nothing spoken yet counts as "after a space"
    drop_space: bool = False

    def feed(self, text: str) -> str:
        """Return the speakable part of ``text``; completed emotes are appended to ``found``."""
        # works on runs of text between markers (not character by character): this runs for
        # every delta of every reply
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            if self.opener is None:
                marker = _OPENERS.search(text, i)
                end = marker.start() if marker else n
                if self.drop_space:
                    while i < end and text[i] == " ":
                        i += 1
                    if i < end:
                        self.drop_space = False
                if i < end:
                    out.append(text[i:end])
                    self.ends_with_space = text[end - 1].isspace()
                if marker is None:
                    break
                self.opener, self.held, i = text[end], [], end + 1
                continue
            closer = text.find(_CLOSERS[self.opener], i)
            end = n if closer < 0 else closer
            piece = text[i : min(end, i + MAX_EMOTE_CHARS + 1 - len(self.held))]
            self.held.extend(piece)
            i += len(piece)
            if len(self.held) > MAX_EMOTE_CHARS:
                out.append(self._release())
            elif i == closer:
                self._close(out)
                i += 1
        return "".join(out)

    def _close(self, out: list[str]) -> None:
        inner = "".join(self.held).strip()
        opener = self.opener
        self.opener, self.held = None, []
        if opener == "(" and len(inner.split()) > MAX_PAREN_WORDS:
            out.append(f"({inner})")
            self.ends_with_space = False
            return
        if inner:
            self.found.append(inner)
        # "Aye. *nods* Good." must read "Aye. Good.", not "Aye.  Good."
        self.drop_space = self.ends_with_space

    def _release(self) -> str:
        text = (self.opener or "") + "".join(self.held)
        self.opener, self.held = None, []
        self.drop_space = False
        if text:
            self.ends_with_space = text[-1].isspace()
        return text

    def flush(self) -> str:
        """End of stream: an unclosed ``(`` aside is spoken; an unclosed ``*`` is dropped."""
        if self.opener == "(":
            return self._release()
        self.opener, self.held = None, []
        return ""


def _filter(turn: Turn) -> EmoteFilter:
    state = turn.state.get("emotes")
    if state is None:
        state = turn.state["emotes"] = EmoteFilter()
    return state  # type: ignore[no-any-return]


def _emit_new(turn: Turn, flt: EmoteFilter) -> None:
    while len(turn.emotes) < len(flt.found):
        emote = flt.found[len(turn.emotes)]
        turn.emotes.append(emote)
        turn.emit({"type": "emote", "id": turn.request_id, "npc": turn.npc, "emote": emote})


@hookimpl(tryfirst=True)
def npcbridge_transform_delta(turn: Turn, text: str) -> str:
    """Hold back stage directions; send each as an ``emote`` frame when it closes."""
    flt = _filter(turn)
    spoken = flt.feed(text)
    if len(flt.found) > len(turn.emotes):
        _emit_new(turn, flt)
    return spoken


@hookimpl(tryfirst=True)
def npcbridge_flush_delta(turn: Turn) -> str | None:
    """Release an unfinished aside at the end of the stream."""
    flt = turn.state.get("emotes")
    return flt.flush() if flt is not None else None
