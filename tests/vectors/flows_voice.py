"""Flow vectors for voice: ``reply.audio`` frames and ``transcript`` belong to their reply and
end nothing; a speech request (``speech``, or ``speech.start`` with its chunks) ends like a
``say``; a refused chunk touches no request (``make_flows.py`` holds the format). Audio bytes
are tagged ``{"$bin": "<hex>"}`` in flows.json; routing never looks at them."""

from __future__ import annotations

from typing import Any

# imported by make_flows.py, which puts this folder on the import path
from flow_frames import RULE_REFUSAL, RULE_REPLY, delta, end, error, start

RULE_VOICE = "docs/protocol.md#voice"


def audio(rid: str | int, seq: int, text: str) -> dict[str, Any]:
    """A ``reply.audio`` frame of 2 ms of silence at 24 kHz."""
    return {
        "type": "reply.audio",
        "id": rid,
        "npc": "blacksmith",
        "seq": seq,
        "text": text,
        "format": "pcm16",
        "sample_rate": 24000,
        "channels": 1,
        "audio": bytes(96),
        "duration_ms": 2,
        "mouth": bytes(1),
        "mouth_hz": 50,
    }


def voice(audio_ms: int, chars: int, **extra: Any) -> dict[str, Any]:
    """A ``reply.end.voice`` report."""
    return {
        "voice": {"ttfa_ms": 210.5, "audio_ms": audio_ms, "chars": chars, "cost_usd": 0.00022}
        | extra
    }


VOICE_FLOWS: list[dict[str, Any]] = [
    {
        "name": "voiced reply: audio frames between deltas, reply.end last",
        "rule": RULE_VOICE,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            delta("t-1", 0, "Aye, lad."),
            delta("t-1", 1, " Leave it."),
            audio("t-1", 0, "Aye, lad."),
            audio("t-1", 1, "Leave it."),
            end("t-1", "Aye, lad. Leave it.", **voice(4, 18)),
        ],
        "expect": {
            "t-1": {
                "ends": "reply",
                "at": 5,
                "finish": "stop",
                "text": "Aye, lad. Leave it.",
                "deltas": "Aye, lad. Leave it.",
            }
        },
        "stray": [],
    },
    {
        "name": "speech in one message: transcript, then the reply",
        "rule": RULE_VOICE,
        "requests": {"v-1": "speech"},
        "frames": [
            {"type": "transcript", "id": "v-1", "npc": "blacksmith", "text": "Hello?"},
            start("v-1"),
            delta("v-1", 0, "Aye."),
            audio("v-1", 0, "Aye."),
            end("v-1", "Aye.", **voice(2, 4)),
        ],
        "expect": {
            "v-1": {"ends": "reply", "at": 4, "finish": "stop", "text": "Aye.", "deltas": "Aye."}
        },
        "stray": [],
    },
    {
        "name": "chunked speech: a refused chunk touches no request, the reply ends it",
        "rule": RULE_REFUSAL,
        "requests": {"v-2": "speech.start"},
        "frames": [
            error(
                "v-2",
                "bad_request",
                "speech.chunk: field 'audio': Input should be a valid bytes",
                refused="speech.chunk",
            ),
            {"type": "transcript", "id": "v-2", "npc": "blacksmith", "text": "Hello?"},
            start("v-2"),
            delta("v-2", 0, "Aye."),
            end("v-2", "Aye."),
        ],
        "expect": {
            "v-2": {"ends": "reply", "at": 4, "finish": "stop", "text": "Aye.", "deltas": "Aye."}
        },
        "stray": [0],
    },
    {
        "name": "speech refused before any frame ends the request",
        "rule": RULE_REFUSAL,
        "requests": {"v-3": "speech"},
        "frames": [
            error("v-3", "bad_request", "speech: field 'audio': not a WAV file", refused="speech")
        ],
        "expect": {"v-3": {"ends": "error", "at": 0, "code": "bad_request"}},
        "stray": [],
    },
    {
        "name": "barge-in: the reply ends cancelled with the text that was voiced",
        "rule": RULE_REPLY,
        "requests": {"t-2": "say"},
        "frames": [
            start("t-2"),
            delta("t-2", 0, "Haunted? Aye. The old"),
            audio("t-2", 0, "Haunted? Aye."),
            end("t-2", "Haunted? Aye.", finish="cancelled", rewritten=True, **voice(2, 13)),
        ],
        "expect": {
            "t-2": {
                "ends": "reply",
                "at": 3,
                "finish": "cancelled",
                "text": "Haunted? Aye.",
                "deltas": "Haunted? Aye. The old",
            }
        },
        "stray": [],
    },
]
