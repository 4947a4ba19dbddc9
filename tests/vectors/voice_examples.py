"""The voice examples of the golden vectors (``make_vectors.py`` writes them): ``speech`` and its
chunked form, ``transcript``, ``reply.audio``, and the voice fields of ``npc.define``, ``say``,
``cancel`` and ``reply.end``. Audio is real: a WAV file of PCM16 in, PCM16 out, with the mouth
envelope the server computes for it (one byte per 20 ms)."""

from __future__ import annotations

import math
import struct
from typing import Any


def pcm16(samples: int, rate: int, hz: float = 440.0, amplitude: int = 8000) -> bytes:
    """``samples`` of a sine tone as little-endian signed 16-bit PCM."""
    return b"".join(
        struct.pack("<h", int(amplitude * math.sin(2 * math.pi * hz * i / rate)))
        for i in range(samples)
    )


def wav(pcm: bytes, rate: int, channels: int = 1) -> bytes:
    """A RIFF/WAVE file holding ``pcm`` (PCM16)."""
    block = 2 * channels
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        rate,
        rate * block,
        block,
        16,
        b"data",
        len(pcm),
    )
    return header + pcm


#: 2 ms of the player's speech at 16 kHz, as WAV; and two raw PCM16 chunks of it
SPEECH_WAV = wav(pcm16(32, 16000), 16000)
CHUNK_0 = pcm16(16, 16000)
#: 2 ms of the NPC's voice at 24 kHz (48 samples) and its mouth envelope: one (partial) 20 ms
#: window, the RMS of every third sample (8000 a second) over full scale, times 4 (speech RMS is
#: far below full scale), clipped to 1, as 0..255
AUDIO_OUT = pcm16(48, 24000)
MOUTH = bytes([181])

VOICE_MESSAGES: list[dict[str, Any]] = [
    {
        "type": "speech",
        "id": "v-1",
        "npc": "blacksmith",
        "player": "p1",
        "audio": SPEECH_WAV,
        "format": "wav",
        "sample_rate": 16000,
        "channels": 1,
        "voice": True,
        "urgency": "realtime",
        "stream": True,
    },
    {
        "type": "speech.start",
        "id": "v-2",
        "npc": "blacksmith",
        "player": "p1",
        "format": "pcm16",
        "sample_rate": 16000,
        "channels": 1,
        "voice": True,
        "urgency": "normal",
        "stream": True,
    },
    {"type": "speech.chunk", "id": "v-2", "seq": 0, "audio": CHUNK_0},
    {"type": "speech.end", "id": "v-2"},
    {"type": "transcript", "id": "v-2", "npc": "blacksmith", "text": "Can you fix my sword?"},
    {
        "type": "reply.audio",
        "id": "v-2",
        "npc": "blacksmith",
        "seq": 0,
        "text": "Aye, lad.",
        "format": "pcm16",
        "sample_rate": 24000,
        "channels": 1,
        "audio": AUDIO_OUT,
        "duration_ms": 2,
        "mouth": MOUTH,
        "mouth_hz": 50,
    },
]

VOICE_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    (
        "npc.define-voice",
        {
            "type": "npc.define",
            "id": 20,
            "npc": "blacksmith",
            "persona": {
                "name": "Brom",
                "description": "The village blacksmith.",
                "knowledge": [],
                "examples": [],
                "actions": [],
                "voice": {
                    "name": "troy",
                    "model": "canopylabs/orpheus-v1-english",
                    "speed": 1.0,
                    "always": False,
                },
            },
        },
    ),
    (
        "say-voice",
        {
            "type": "say",
            "id": "t-9",
            "npc": "blacksmith",
            "player": "p1",
            "text": "Is the mine haunted?",
            "urgency": "normal",
            "stream": True,
            "voice": {"name": "daniel", "speed": 1.0},
        },
    ),
    ("cancel-barge-in", {"type": "cancel", "id": "t-9", "barge_in": True}),
    (
        "reply.end-voice",
        {
            "type": "reply.end",
            "id": "v-2",
            "npc": "blacksmith",
            "text": "Aye, lad. Leave it on the anvil.",
            "finish": "stop",
            "model": "llama-3.1-8b-instant",
            "usage": {"input_tokens": 190, "output_tokens": 9},
            "cost_usd": 1.022e-05,
            "timing": {"queue_ms": 0.3, "ttft_ms": 52.0, "total_ms": 88.5},
            "voice": {"ttfa_ms": 231.5, "audio_ms": 2150, "chars": 32, "cost_usd": 0.000704},
        },
    ),
    (
        "reply.end-voice-error",
        {
            "type": "reply.end",
            "id": "t-9",
            "npc": "blacksmith",
            "text": "Nobody goes down there.",
            "finish": "stop",
            "model": "llama-3.1-8b-instant",
            "usage": {"input_tokens": 170, "output_tokens": 6},
            "cost_usd": 8.98e-06,
            "timing": {"queue_ms": 0.2, "ttft_ms": 47.5, "total_ms": 60.0},
            "voice": {
                "ttfa_ms": 0.0,
                "audio_ms": 0,
                "chars": 0,
                "cost_usd": 0.0,
                "error": "upstream_error",
            },
        },
    ),
    (
        "reply.end-barge-in",
        {
            "type": "reply.end",
            "id": "t-9",
            "npc": "blacksmith",
            "text": "Haunted? Aye.",
            "finish": "cancelled",
            "model": "llama-3.1-8b-instant",
            "usage": {"input_tokens": 170, "output_tokens": 14, "estimated": True},
            "cost_usd": 9.62e-06,
            "timing": {"queue_ms": 0.2, "ttft_ms": 47.5, "total_ms": 900.0},
            "rewritten": True,
            "voice": {"ttfa_ms": 240.0, "audio_ms": 1100, "chars": 13, "cost_usd": 0.000286},
        },
    ),
]
