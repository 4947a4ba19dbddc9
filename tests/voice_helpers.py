"""Helpers of the voice suites: a tiny WAV of speech, frames of a reply by type, the audio a
reply carried, and a turn's frames read until it ends."""

from __future__ import annotations

import math
import struct
from typing import Any

from npcbridge.client import Reply
from npcbridge.features.voice.wav import Pcm, write_wav

SMITH = {"name": "Brom", "description": "A blacksmith.", "voice": {"name": "troy"}}


def speech_wav(seconds: float, rate: int = 16000) -> bytes:
    """``seconds`` of a 300 Hz tone as a WAV file (what the player 'said')."""
    count = int(seconds * rate)
    pcm = struct.pack(f"<{count}h", *(int(5000 * math.sin(i / 8)) for i in range(count)))
    return write_wav(Pcm(pcm, rate))


def of_type(reply: Reply, kind: str) -> list[dict[str, Any]]:
    """The reply's frames of one type, in arrival order."""
    return [frame for frame in reply.frames if frame["type"] == kind]


def audio_of(reply: Reply) -> list[dict[str, Any]]:
    """The reply's ``reply.audio`` frames."""
    return of_type(reply, "reply.audio")


def types(reply: Reply) -> list[str]:
    """The types of the reply's frames, with runs of one type collapsed."""
    out: list[str] = []
    for frame in reply.frames:
        if not out or out[-1] != frame["type"]:
            out.append(frame["type"])
    return out
