"""npcbridge-pirate: NPCs whose persona has ``pirate: true`` talk like pirates.

Built the way any third-party plugin is: its own package, loaded through the ``npcbridge``
entry-point group (see ``pyproject.toml``). It shows two hooks: a system-prompt part, and a
post-processor that rewrites the final text (so ``reply.end`` says ``rewritten: true``).
"""

from __future__ import annotations

import re

import npcbridge
from npcbridge.pipeline.turn import Turn

SWAPS = ((r"\byou\b", "ye"), (r"\byour\b", "yer"), (r"\bmy\b", "me"), (r"\bhello\b", "ahoy"))
SIGN_OFF = "Arr!"


def is_pirate(turn: Turn) -> bool:
    """True when the NPC's persona asks for pirate speech."""
    return bool((turn.persona.model_extra or {}).get("pirate"))


def piratify(text: str) -> str:
    """Rewrite text the pirate way and sign it off."""
    for pattern, replacement in SWAPS:
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    text = text.rstrip()
    return text if text.endswith(SIGN_OFF) else f"{text} {SIGN_OFF}".strip()


@npcbridge.hookimpl
def npcbridge_persona(turn: Turn) -> str | None:
    """Ask the model for pirate speech."""
    if is_pirate(turn):
        return "You speak like an old sea pirate."
    return None


@npcbridge.hookimpl
def npcbridge_post_process(turn: Turn, text: str, finish: str) -> str | None:
    """Rewrite completed replies (cancelled or failed ones are left as they were)."""
    if is_pirate(turn) and finish in ("stop", "length") and text:
        return piratify(text)
    return None
