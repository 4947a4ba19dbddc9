"""``reply.audio`` frames from a spoken unit's PCM: split into frames of at most
``max_bytes`` audio bytes at whole mouth windows, each with its mouth envelope."""

from __future__ import annotations

from typing import Any

from .wav import MOUTH_HZ, Pcm, mouth_envelope


def audio_frames(
    request_id: str | int, npc: str, seq: int, text: str, pcm: Pcm, max_bytes: int
) -> list[dict[str, Any]]:
    """The frames of one unit, ``seq`` counting on from ``seq``; the first carries ``text``,
    the others ``""``."""
    window = max(1, pcm.sample_rate // MOUTH_HZ) * 2 * pcm.channels
    step = max(window, max_bytes // window * window)
    frames = []
    for index, start in enumerate(range(0, max(len(pcm.data), 1), step)):
        part = Pcm(pcm.data[start : start + step], pcm.sample_rate, pcm.channels)
        frames.append(
            {
                "type": "reply.audio",
                "id": request_id,
                "npc": npc,
                "seq": seq + index,
                "text": text if index == 0 else "",
                "format": "pcm16",
                "sample_rate": pcm.sample_rate,
                "channels": pcm.channels,
                "audio": part.data,
                "duration_ms": part.duration_ms,
                "mouth": mouth_envelope(part),
                "mouth_hz": MOUTH_HZ,
            }
        )
    return frames
