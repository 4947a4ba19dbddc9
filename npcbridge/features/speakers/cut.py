"""The speaker cut: an NPC speaks only as itself.

Models sometimes keep writing the script: ``"Aye, lad.\\nPlayer: Thanks!\\nBrom: ..."``. A line
that starts with a speaker label is classified when its label is complete:

* the NPC's own name (``"Brom: Aye."``, also its id or the first word of its name): the label is
  removed and the line is kept;
* another known speaker — the player (``Player``, ``User``, ``You``, the player's id or
  ``context.player_name``) or another NPC of the scene: that line **and everything after it** is
  cut (the NPC stopped speaking as itself, the rest is an invented script);
* a generic ``Name:`` label (one to three capitalised words that are not common words such as
  ``Note`` or ``Price``) followed by speech (a capital letter or a quote): cut as well.

It works on the stream: only the start of a line is held back, and only while it could still be
a label (at most :data:`MAX_LABEL_CHARS` characters, four words, no sentence punctuation, not a
complete common first word such as ``Well`` or ``The`` unless a known speaker's name starts so),
so speech is delayed by a token at most at each line start, and usually not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_LABEL_CHARS = 48
MAX_LABEL_WORDS = 4
MAX_GENERIC_WORDS = 3

#: labels that always mean "the player"
PLAYER_LABELS = frozenset({"player", "the player", "user", "you", "human", "traveller", "traveler"})

#: capitalised words that start ordinary lines ("Note: ...", "Price: 12 gold"), not speakers
COMMON_WORDS = frozenset(
    """
    note notes remember warning hint tip tips ps answer question example examples step steps
    quest title description objective objectives reward rewards price prices cost costs location
    time today tomorrow yesterday rule rules lesson first second third next then finally also
    well listen look see so now here there yes no aye nay oh ah hmm but and or because result
    summary total update news rumour rumor rumours rumors warning caution danger important fact
    facts ingredients recipe option options choice choices menu stock item items
    the a an i it we this that these those what who why how where when welcome greetings hello hi
    hey good come please thank thanks sorry indeed certainly perhaps maybe ahoy alas
    """.split()
)

_OPEN_MARKUP = "*_\"'[(“«「"
_CLOSE_MARKUP = "*_\"')]”»」"
_COLONS = ":："
_LABEL = re.compile(
    r"^[*_\"'\[(“«「]*(?P<name>[^\W\d_][\w '’-]*?)[*_\"')\]”»」]*[ \t]*(?P<colon>[:：])"
)
_PREFIX = re.compile(r"^[*_\"'\[(“«「]*(?:[^\W\d_][\w '’-]*[*_\"')\]”»」]*[ \t]*)?\Z")
_MARKUP_AFTER_LABEL = re.compile(r"^[*_]+")
#: a run of letters and digits (decided as a whole at a line start)
_WORD_RUN = re.compile(r"[^\W_]+")
_SPEECH_START = re.compile(r"[^\W\d_]|[\"“«「'*(]")


def normalize(name: str) -> str:
    """Lower-case, single-spaced, without surrounding punctuation."""
    return " ".join(re.sub(r"[^\w\s'’-]", " ", name).lower().split())


def _is_generic_name(name: str) -> bool:
    words = name.split()
    if not 1 <= len(words) <= MAX_GENERIC_WORDS:
        return False
    if normalize(words[0]) in COMMON_WORDS:
        return False
    # every word capitalised (scripts without case, such as CJK, count as names)
    return all(not w[0].islower() for w in words)


@dataclass
class SpeakerCut:
    """Streaming state of one reply: feed pieces, get the speakable text back.

    ``own`` and ``others`` hold normalised names (see :func:`normalize`).
    """

    own: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)
    generic: bool = True
    held: str = ""
    at_line_start: bool = True
    #: drop the spaces that follow a removed own-name label
    skip_space: bool = False
    cut: bool = False
    #: the label that caused the cut (for logs and tests)
    cut_label: str | None = None
    stripped_labels: list[str] = field(default_factory=list)

    def feed(self, text: str) -> str:
        """Return the part of ``text`` that may be spoken now."""
        out: list[str] = []
        i, n = 0, len(text)
        while i < n and not self.cut:
            if not self.at_line_start:
                # the rest of a decided line goes out as one run (this runs for every delta)
                newline = text.find("\n", i)
                end = n if newline < 0 else newline
                if self.skip_space:
                    while i < end and text[i] in " \t":
                        i += 1
                    if i < end:
                        self.skip_space = False
                out.append(text[i:end])
                if newline < 0:
                    break
                self.at_line_start, self.held, self.skip_space = True, "\n", False
                i = newline + 1
                continue
            run = None if self.skip_space else _WORD_RUN.match(text, i)
            if run is not None:
                # letters and digits cannot complete a label (that needs a colon) nor turn a
                # line start that stopped being one back into one: deciding once at the end of
                # the run gives what deciding after each character gives (not while spaces
                # after a removed label are dropped: where the line was decided matters then)
                self.held += run.group()
                i = run.end()
                released = self._decide(final=False)
                if released is not None:
                    out.append(released)
                continue
            ch = text[i]
            i += 1
            if ch == "\n" and self.held.strip():
                # the held line ended without becoming a label: decide it, hold the next one
                out.append(self._decide(final=True) or "")
                if self.cut:
                    break
                self.at_line_start = True
            self.held += ch
            released = self._decide(final=False)
            if released is not None:
                out.append(released)
        return "".join(out)

    def flush(self) -> str:
        """End of the reply: decide about a line start still held back."""
        if self.cut or not self.at_line_start:
            return ""
        return self._decide(final=True) or ""

    # ------------------------------------------------------------------ deciding

    def _release(self, text: str) -> str:
        self.held, self.at_line_start = "", False
        return text

    def _decide(self, final: bool) -> str | None:
        """Return text to release (the line is decided) or None (keep holding)."""
        held = self.held
        lead_len = len(held) - len(held.lstrip())
        lead, line = held[:lead_len], held[lead_len:]
        if not line:
            if final:
                return self._release("" if "\n" in lead else lead)
            return None
        # a label needs its colon: while there is none (most line starts) skip the pattern
        match = _LABEL.match(line) if ":" in line or "：" in line else None
        if match is None:
            if not final and self._could_be_label(line):
                return None
            return self._release(held)
        name = match.group("name").strip()
        key = normalize(name)
        after = line[match.end() :]
        if self._is_own(key):
            if not final and not after.strip(" \t*_"):
                return None  # wait for the speech: closing markup may follow the colon
            self.stripped_labels.append(name)
            after = _MARKUP_AFTER_LABEL.sub("", after)
            self.skip_space = not after.strip()
            return self._release(lead + after.lstrip())
        if key in self.others:
            return self._cut(name)
        if self.generic and _is_generic_name(name):
            rest = after.lstrip()
            if not rest:
                return self._cut(name) if final else None
            if _SPEECH_START.match(rest):
                return self._cut(name)
        return self._release(held)

    def _could_be_label(self, line: str) -> bool:
        """True while ``line`` may still turn into a speaker label."""
        if len(line) > MAX_LABEL_CHARS or len(line.split()) > MAX_LABEL_WORDS:
            return False
        if _PREFIX.match(line) is None:
            return False
        bare = line.strip(_OPEN_MARKUP).rstrip(_CLOSE_MARKUP + " \t")
        prefix = " ".join(bare.lower().split()) + (" " if line[-1:] in " \t" else "")
        for names in (self.own, self.others):
            for name in names:
                if name.startswith(prefix):
                    return True
        words = bare.split()
        first_complete = len(words) > 1 or prefix.endswith(" ")
        if words and first_complete and normalize(words[0]) in COMMON_WORDS:
            return False  # "Well met": a generic label never starts with a common word
        return (
            self.generic
            and len(words) <= MAX_GENERIC_WORDS
            and all(not w[0].islower() for w in words)
        )

    def _is_own(self, key: str) -> bool:
        if key in self.own:
            return True
        return any(
            own and (key.startswith(own + " ") or key.endswith(" " + own)) for own in self.own
        )

    def _cut(self, name: str) -> str:
        self.cut, self.cut_label = True, name
        self.held = ""
        return ""


def make_cut(own: Iterable[str], others: Iterable[str], *, generic: bool = True) -> SpeakerCut:
    """A :class:`SpeakerCut` for an NPC known by ``own`` names, among ``others``."""
    own_keys = {normalize(n) for n in own if n and normalize(n)}
    # the first word of a multi-word name is a common short label ("Brom" for "Brom Ironfist")
    own_keys |= {k.split()[0] for k in list(own_keys) if len(k.split()) > 1}
    other_keys = {normalize(n) for n in others if n and normalize(n)} | PLAYER_LABELS
    return SpeakerCut(own=own_keys, others=other_keys - own_keys, generic=generic)


def cut_speaker_lines(
    text: str, own: Iterable[str], others: Iterable[str], *, generic: bool = True
) -> str:
    """The whole-text form of the cut (used on the final text)."""
    cut = make_cut(own, others, generic=generic)
    return (cut.feed(text) + cut.flush()).rstrip()
