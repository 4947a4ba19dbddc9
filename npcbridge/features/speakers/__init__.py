"""The speaker cut: an NPC speaks only as itself.

* :mod:`.cut` -- the cut itself, on a stream (:class:`SpeakerCut`) or a whole text;
* :mod:`.hooks` -- applying it to every turn (the gameplay plugin's per-turn hooks).
"""

from __future__ import annotations

from .cut import (
    COMMON_WORDS,
    MAX_LABEL_CHARS,
    MAX_LABEL_WORDS,
    PLAYER_LABELS,
    SpeakerCut,
    cut_speaker_lines,
    make_cut,
    normalize,
)

__all__ = [
    "COMMON_WORDS",
    "MAX_LABEL_CHARS",
    "MAX_LABEL_WORDS",
    "PLAYER_LABELS",
    "SpeakerCut",
    "cut_speaker_lines",
    "make_cut",
    "normalize",
]
