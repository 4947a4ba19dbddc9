"""npcbridge-moderation: a blocklist and length limits on player input and NPC output.

Loaded through the ``npcbridge`` entry-point group: the entry point names the class
:class:`Moderation`, so every server builds its own instance and several servers in one process
each have their own settings. Settings live in ``[extra.moderation]`` of the server's
configuration (see README.md), declared with ``npcbridge_register_settings`` and read at
start-up. Without settings the plugin does nothing.

* ``npcbridge_before_request``: a player line that is too long or blocked → ``error``
  ``filtered`` (nothing goes upstream).
* ``npcbridge_transform_delta`` / ``npcbridge_flush_delta``: the reply is checked as it
  streams; only the word being written is held back. A blocked word or the output limit raises
  :class:`npcbridge.pipeline.run.StopReply` with finish ``"filtered"``: the upstream request is
  closed and the blocked text never reaches the player.
* ``npcbridge_post_process``: a filtered reply's final text (``replacement`` when configured).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

import npcbridge
from npcbridge.pipeline.run import StopReply
from npcbridge.pipeline.turn import Turn
from npcbridge.plugin.api import PluginAPI
from npcbridge.protocol.errors import ErrorCode, ProtocolError

#: where a reply's streaming state lives in ``turn.state``
STATE_KEY = "npcbridge_moderation"


class Settings(BaseModel):
    """``[extra.moderation]``."""

    model_config = ConfigDict(extra="forbid")

    blocklist: list[str] = Field(default_factory=list)
    max_input_chars: int | None = Field(default=None, ge=1)
    max_output_chars: int | None = Field(default=None, ge=1)
    replacement: str | None = None

    def pattern(self) -> re.Pattern[str] | None:
        """One regex for the whole blocklist (whole words, any whitespace inside phrases)."""
        terms = [t.strip() for t in self.blocklist if t.strip()]
        if not terms:
            return None
        alternatives = sorted(
            (r"\s+".join(re.escape(w) for w in term.split()) for term in terms),
            key=len,
            reverse=True,
        )
        return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


@dataclass
class Moderator:
    """The compiled settings of one server."""

    settings: Settings = field(default_factory=Settings)
    blocked: re.Pattern[str] | None = None

    #: words in the longest blocked phrase
    phrase_words: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Moderator:
        """Compile the settings."""
        longest = max((len(t.split()) for t in settings.blocklist if t.strip()), default=1)
        return cls(settings, settings.pattern(), longest)

    def is_blocked(self, text: str) -> bool:
        """True when ``text`` contains a blocked word or phrase."""
        return self.blocked is not None and self.blocked.search(text) is not None

    @property
    def active(self) -> bool:
        """False when nothing is configured (the plugin then does nothing at all)."""
        s = self.settings
        return bool(self.blocked or s.max_input_chars or s.max_output_chars)


_INERT = Moderator()


@dataclass
class OutputState:
    """Streaming state of one reply."""

    #: the reply text released so far
    said: str = ""
    held: str = ""
    filtered: bool = False


_WORD_TAIL = re.compile(r"\w+$")
_WORD = re.compile(r"\w+")


def _check(mod: Moderator, state: OutputState, text: str, final: bool) -> str:
    """Release what may be spoken of ``state.held + text``; raise StopReply when blocked."""
    pending = state.held + text
    if final:
        release, state.held = pending, ""
    else:
        # hold the word being written, and as many words before it as a blocked phrase has
        # words more than one ("dark" waits to see whether "lord" follows)
        words = list(_WORD.finditer(pending))
        keep = mod.phrase_words - 1 + (1 if _WORD_TAIL.search(pending) else 0)
        cut = words[-min(keep, len(words))].start() if keep and words else len(pending)
        release, state.held = pending[:cut], pending[cut:]
    limit = mod.settings.max_output_chars
    # everything so far except a word still being written ("damn" may become "damnation")
    tail = None if final else _WORD_TAIL.search(pending)
    complete = pending[: tail.start()] if tail else pending
    said = state.said
    match = mod.blocked.search(said + complete) if mod.blocked is not None else None
    if match is not None:
        # the piece may hold several tokens: what comes before the blocked words is still said
        spoken = pending[: max(0, match.start() - len(said))]
        state.filtered, state.held = True, ""
        raise StopReply("filtered", "moderation", spoken=spoken)
    if limit is not None and len(said) + len(release) > limit:
        state.filtered, state.held = True, ""
        raise StopReply("filtered", "moderation")
    state.said += release
    return release


class Moderation:
    """The plugin: one instance per server, holding that server's :class:`Moderator`."""

    def __init__(self) -> None:
        self.moderator = _INERT

    @npcbridge.hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """Declare ``[extra.moderation]`` (an invalid table stops start-up in one line)."""
        register("moderation", Settings)

    @npcbridge.hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        """Build this server's moderator from its validated settings."""
        settings = api.plugin_settings("moderation")
        assert isinstance(settings, Settings)
        self.moderator = Moderator.from_settings(settings)

    @npcbridge.hookimpl
    def npcbridge_before_request(self, turn: Turn) -> None:
        """Refuse a player line that is too long or contains blocked words."""
        mod = self.moderator
        # the player's line as sent; None when the turn answers no player line (a bark, a
        # quest, an NPC answering another NPC in a scene)
        text = turn.player_text
        if not mod.active or text is None:
            return
        limit = mod.settings.max_input_chars
        if limit is not None and len(text) > limit:
            raise ProtocolError(
                ErrorCode.FILTERED, f"the player's line is longer than {limit} characters"
            )
        if mod.is_blocked(text):
            # never echo the blocked word back
            raise ProtocolError(ErrorCode.FILTERED, "the player's line contains blocked words")

    @npcbridge.hookimpl
    def npcbridge_transform_delta(self, turn: Turn, text: str) -> str | None:
        """Check the reply as it streams, holding back only the word being written."""
        mod = self.moderator
        if not mod.active:
            return None
        state = turn.state.setdefault(STATE_KEY, OutputState())
        return _check(mod, state, text, final=False)

    @npcbridge.hookimpl
    def npcbridge_flush_delta(self, turn: Turn) -> str | None:
        """Check and release the last word at the end of the stream."""
        state = turn.state.get(STATE_KEY)
        if not isinstance(state, OutputState) or not state.held:
            return None
        return _check(self.moderator, state, "", final=True)

    @npcbridge.hookimpl
    def npcbridge_post_process(self, turn: Turn, text: str, finish: str) -> str | None:
        """A filtered reply ends with what was spoken before the block (or ``replacement``)."""
        if finish != "filtered":
            return None
        return self.moderator.settings.replacement
