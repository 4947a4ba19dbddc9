"""Encoder edge cases (``canonical.json``): what a canonical encoder must write for a message.

Each case has ``message`` in tagged JSON (``{"$float": x}`` for a float, so a whole-number float
such as 2.0 is not mistaken for an integer; ``null`` for a field the sender leaves unset) and
``hex``, the bytes a canonical encoder writes for it. The cases catch encoders that pass every
other vector: integral floats written as integers, unset fields written as nil, map keys sorted
by UTF-16 code units instead of UTF-8 bytes (the orders differ beyond the BMP).

A runtime with one number type (Lua 5.1, LuaJIT) writes the protocol's float fields
(:data:`FLOAT_FIELDS`) as float64 whatever their value, and other integral numbers as integers
(docs/protocol.md, "Canonical encoding").
"""

from __future__ import annotations

from typing import Any

#: where the protocol carries floats (the field name, in any message): always float64 on the wire
FLOAT_FIELDS = (
    "temperature",
    "cost_usd",
    "queue_ms",
    "ttft_ms",
    "total_ms",
    "at",
    "score",
    "ttfa_ms",
    "speed",
)


def f(x: float) -> dict[str, float]:
    """A float in tagged JSON."""
    return {"$float": float(x)}


CASES: list[dict[str, Any]] = [
    {
        "name": "reply.end: whole-number cost and timings stay float64",
        "message": {
            "type": "reply.end",
            "id": "t-1",
            "npc": "blacksmith",
            "text": "Aye.",
            "finish": "stop",
            "model": "llama-3.1-8b-instant",
            "usage": {"input_tokens": 10, "output_tokens": 2},
            "cost_usd": f(2.0),
            "timing": {"queue_ms": f(0.0), "ttft_ms": f(48.0), "total_ms": f(1.0)},
        },
    },
    {
        "name": "say: a whole-number temperature stays float64; integral context numbers are ints",
        "message": {
            "type": "say",
            "id": "t-2",
            "npc": "blacksmith",
            "player": "p1",
            "text": "Hello",
            "context": {"gold": 12, "weight": f(1.5)},
            "temperature": f(1.0),
            "urgency": "normal",
            "stream": True,
        },
    },
    {
        "name": "say: unset fields (null here) are left out, not written as nil",
        "message": {
            "type": "say",
            "id": "t-3",
            "npc": "blacksmith",
            "player": "p1",
            "text": "Hello",
            "context": None,
            "max_tokens": None,
            "temperature": None,
            "urgency": "normal",
            "stream": True,
        },
    },
    {
        "name": "say: context keys beyond the BMP sort by UTF-8 bytes, not UTF-16 code units",
        "message": {
            "type": "say",
            "id": "t-4",
            "npc": "blacksmith",
            "player": "p1",
            "text": "Hello",
            # UTF-8: "z" 7a < U+FF61 ef.. < U+1F600 f0..; UTF-16 puts U+1F600 (d83d) before U+FF61
            "context": {"\U0001f600": 1, "\uff61": 2, "z": 3},
            "urgency": "normal",
            "stream": True,
        },
    },
    {
        "name": "reply.end: whole-number voice timings and cost stay float64",
        "message": {
            "type": "reply.end",
            "id": "t-5",
            "npc": "blacksmith",
            "text": "Aye.",
            "finish": "stop",
            "model": "llama-3.1-8b-instant",
            "usage": {"input_tokens": 10, "output_tokens": 2},
            "cost_usd": f(0.0),
            "timing": {"queue_ms": f(0.0), "ttft_ms": f(48.0), "total_ms": f(90.0)},
            "voice": {"ttfa_ms": f(200.0), "audio_ms": 800, "chars": 4, "cost_usd": f(0.0)},
        },
    },
    {
        "name": "say and npc.define: a whole-number voice speed stays float64",
        "message": {
            "type": "say",
            "id": "t-6",
            "npc": "blacksmith",
            "player": "p1",
            "text": "Hello",
            "voice": {"name": "troy", "speed": f(1.0)},
            "urgency": "normal",
            "stream": True,
        },
    },
    {
        "name": "npc.define: a whole-number persona voice speed stays float64",
        "message": {
            "type": "npc.define",
            "id": 7,
            "npc": "blacksmith",
            "persona": {
                "name": "Brom",
                "knowledge": [],
                "examples": [],
                "actions": [],
                "voice": {"name": "troy", "speed": f(2.0)},
            },
        },
    },
    {
        "name": "memory: a whole-number time stays float64",
        "message": {
            "type": "memory",
            "id": 4,
            "items": [
                {"text": "the mine closed", "kind": "fact", "importance": 5, "at": f(1764000000.0)}
            ],
        },
    },
]


def untag(value: Any) -> Any:
    """The value a sender holds: ``$float`` tags become floats; ``None`` (unset) stays."""
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def _left_out(value: Any) -> Any:
    """``value`` without its unset (None) map entries, as a canonical encoder sends it."""
    if isinstance(value, dict):
        return {k: _left_out(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_left_out(v) for v in value]
    return value


def document() -> dict[str, Any]:
    """The content of ``canonical.json``."""
    from npcbridge.protocol import CLIENT_MESSAGES, SERVER_MESSAGES, encode, pack

    cases = []
    for case in CASES:
        sent = untag(case["message"])
        raw = pack(_left_out(sent))
        kind = sent["type"]
        model = (CLIENT_MESSAGES.get(kind) or SERVER_MESSAGES[kind]).model_validate(sent)
        assert encode(model) == raw, case["name"]  # the server's own path writes the same bytes
        cases.append({**case, "hex": raw.hex()})
    return {"float_fields": list(FLOAT_FIELDS), "cases": cases}
