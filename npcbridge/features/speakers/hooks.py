"""The speaker cut on every turn: on the stream, at its end, and on the final text.

The gameplay plugin's ``npcbridge_transform_delta``, ``npcbridge_flush_delta`` and
``npcbridge_post_process`` call these. The NPC is known by its id and persona name; the others
are the player (its id, ``context.player_name``) and, in a scene, everyone else there.
"""

from __future__ import annotations

import logging

from ...pipeline.run import StopReply
from ...pipeline.turn import Turn
from ..scenes.prompts import speaker_names
from .cut import SpeakerCut, cut_speaker_lines, make_cut

log = logging.getLogger("npcbridge.gameplay")

#: where a turn keeps its streaming cut (``turn.state`` is keyed by plugin)
STATE_KEY = "speaker_cut"


def names(turn: Turn) -> tuple[list[str], list[str]]:
    """(the NPC's own names, everyone else's) for ``turn``."""
    own = [turn.npc, turn.persona.name]
    others = [turn.player, *speaker_names(turn)]
    player_name = turn.context.get("player_name")
    if isinstance(player_name, str):
        others.append(player_name)
    return own, others


def _cut_of(turn: Turn) -> SpeakerCut | None:
    cut = turn.state.get(STATE_KEY)
    return cut if isinstance(cut, SpeakerCut) else None


def transform_delta(turn: Turn, text: str) -> str:
    """The speakable part of one streamed piece; ends the reply once the NPC spoke as someone
    else (:class:`StopReply` ``stop``)."""
    cut = _cut_of(turn)
    if cut is None:
        own, others = names(turn)
        cut = turn.state[STATE_KEY] = make_cut(own, others)
    if cut.cut:
        raise StopReply("stop", f"npc {turn.npc} began speaking as {cut.cut_label}")
    return cut.feed(text)


def flush_delta(turn: Turn) -> str | None:
    """Release a line start held back at the end of the stream."""
    cut = _cut_of(turn)
    return cut.flush() if cut is not None else None


def post_process(turn: Turn, text: str) -> str:
    """The same cut on the final text (catches text released by later plugins)."""
    cut = _cut_of(turn)
    if cut is not None and cut.cut_label:
        log.info("npc=%s speaker cut at %r", turn.npc, cut.cut_label)
    own, others = names(turn)
    return cut_speaker_lines(text, own, others)
