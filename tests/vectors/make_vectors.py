"""Write the golden vectors in this folder from the examples below.

The files this writes are the source of truth for bytes on the wire: the Python, Lua and GDScript
test suites all read them. ``tests/test_vectors.py`` fails when the files and this script disagree,
so a protocol change means: edit the examples here, run ``python tests/vectors/make_vectors.py``,
update ``docs/protocol.md`` and the three clients, commit together.

Files:
- ``<type>.msgpack`` / ``<type>.json``: one canonical message per kind and its readable twin.
- ``<name>.msgpack`` / ``<name>.json``: further examples of a kind (``VARIANTS``, such as an
  ``error`` that refuses a request).
- ``index.json``: the list of message kinds, and of the variants with their ``type`` (so
  clients need no directory listing).
- ``codec.json``: msgpack type-coverage cases; each has ``hex`` (input), ``canonical_hex`` (what a
  canonical encoder writes for the decoded value) and ``value`` in tagged JSON
  (``{"$int": "..."}`` for integers beyond 2^53, ``{"$bin": "<hex>"}`` for bin,
  ``{"$float": x}`` for floats).
- ``invalid.json``: byte strings every decoder must reject with an error value (never a crash).
- ``flows.json``: sequences of server frames and how each request must end (``make_flows.py``).
- ``canonical.json``: messages and the bytes a canonical encoder writes for them: whole-number
  floats, unset fields, keys beyond the BMP (``make_canonical.py``).
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from npcbridge.protocol import pack  # noqa: E402

MESSAGES: list[dict[str, Any]] = [
    {"type": "hello", "protocol": 1, "client": "godot/4.6 npcbridge-gd/0.1.0", "token": "s3cret"},
    {
        "type": "welcome",
        "protocol": 1,
        "session": "c0ffee42",
        "server": "npcbridge/0.1.0",
        "models": ["llama-3.1-8b-instant", "llama-3.3-70b-versatile"],
        "features": ["stream", "cancel", "memory", "quest", "actions", "emotes", "barks", "scenes"],
        "limits": {"max_message_bytes": 65536, "max_in_flight": 8},
    },
    {
        "type": "npc.define",
        "id": 1,
        "npc": "blacksmith",
        "persona": {
            "name": "Brom",
            "description": "The village blacksmith, rough but kind.",
            "personality": "gruff, honest, protective of the village",
            "speech_style": "short sentences, calls everyone 'lad'",
            "knowledge": ["The mine closed last winter.", "Steel costs 12 gold."],
            "examples": ["Aye, lad. What d'you need?"],
            "model": "llama-3.1-8b-instant",
            "temperature": 0.7,
            "max_tokens": 120,
            "actions": [
                {
                    "name": "open_shop",
                    "description": "Show the shop window to the player.",
                    "parameters": {"type": "object", "properties": {}},
                }
            ],
        },
    },
    {"type": "ok", "id": 1},
    {
        "type": "say",
        "id": "t-7",
        "npc": "blacksmith",
        "player": "p1",
        "text": "Grüß dich! Can you fix my sword?",
        "context": {"location": "forge", "hour": 21, "reputation": -3, "quest_done": True},
        "urgency": "realtime",
        "max_tokens": 80,
        "temperature": 0.5,
        "stream": True,
    },
    {"type": "reply.start", "id": "t-7", "npc": "blacksmith", "model": "llama-3.1-8b-instant"},
    {"type": "reply.delta", "id": "t-7", "seq": 0, "text": "Aye, lad"},
    {"type": "emote", "id": "t-7", "npc": "blacksmith", "emote": "wipes his hands on his apron"},
    {"type": "action", "id": "t-7", "npc": "blacksmith", "name": "open_shop", "args": {}},
    {
        "type": "reply.end",
        "id": "t-7",
        "npc": "blacksmith",
        "text": "Aye, lad, leave it on the anvil. I'll have it sharp by dawn.",
        "finish": "stop",
        "model": "llama-3.1-8b-instant",
        "usage": {"input_tokens": 212, "output_tokens": 17},
        "cost_usd": 1.1960000000000001e-05,
        "timing": {"queue_ms": 0.4, "ttft_ms": 61.5, "total_ms": 95.25},
        "rewritten": True,
        "emotes": ["wipes his hands on his apron"],
        "actions": [{"name": "open_shop", "args": {}}],
    },
    {"type": "cancel", "id": "t-7"},
    {
        "type": "memory.add",
        "id": 2,
        "npc": "blacksmith",
        "player": "p1",
        "text": "the player stole the sword",
        "importance": 8,
    },
    {"type": "memory.forget", "id": 3, "npc": "blacksmith", "player": "p1"},
    {
        "type": "memory.query",
        "id": 4,
        "npc": "blacksmith",
        "player": "p1",
        "text": "sword",
        "limit": 5,
    },
    {
        "type": "memory",
        "id": 4,
        "items": [
            {
                "text": "the player stole the sword",
                "kind": "fact",
                "importance": 8,
                "at": 1764000000.5,
                "score": 0.8125,
            },
        ],
    },
    {
        "type": "quest.generate",
        "id": 5,
        "theme": "a haunted mine",
        "difficulty": "hard",
        "npc": "blacksmith",
        "context": {"player_level": 12},
        "fields": {"xp": {"type": "integer", "minimum": 0}},
    },
    {
        "type": "quest",
        "id": 5,
        "quest": {
            "title": "The Deep Forge",
            "description": "Something hammers in the closed mine at night.",
            "objectives": [
                "Get the mine key from Brom",
                "Enter the mine",
                "Follow the hammering to the old forge",
                "Light the forge with dragon coal",
                "Silence the ghost smith",
            ],
            "rewards": ["250 gold", "Brom's old hammer"],
            "xp": 400,
            "difficulty": "hard",
            "giver": "blacksmith",
        },
        "source": "json",
        "model": "openai/gpt-oss-20b",
        "usage": {"input_tokens": 310, "output_tokens": 96},
        "cost_usd": 5.205e-05,
    },
    {
        "type": "barks.generate",
        "id": 6,
        "npcs": [{"npc": "blacksmith"}, {"npc": "mage", "context": {"weather": "rain"}}],
        "context": {"location": "market"},
    },
    {
        "type": "barks",
        "id": 6,
        "results": [
            {"npc": "blacksmith", "text": "Blades! Fresh from the fire!"},
            {
                "npc": "mage",
                "error": {"code": "rate_limited", "message": "try again", "retry_after_ms": 1500},
            },
        ],
    },
    {
        "type": "scene.start",
        "id": 10,
        "scene": "tavern",
        "player": "p1",
        "player_name": "Rowan",
        "npcs": ["blacksmith", "mage", "innkeeper"],
        "context": {"location": "the Prancing Pony", "hour": 22},
        "max_replies": 3,
    },
    {
        "type": "scene.say",
        "id": "s-1",
        "scene": "tavern",
        "text": "Aelindra, is the mine really haunted?",
        "to": "mage",
        "context": {"weather": "storm"},
        "max_replies": 2,
        "urgency": "realtime",
    },
    {"type": "scene.add", "id": 11, "scene": "tavern", "npc": "guard"},
    {"type": "scene.remove", "id": 12, "scene": "tavern", "npc": "innkeeper"},
    {"type": "scene.interrupt", "id": 13, "scene": "tavern"},
    {"type": "scene.end", "id": 14, "scene": "tavern"},
    {
        "type": "scene.done",
        "id": "s-1",
        "scene": "tavern",
        "replies": [
            {"id": "s-1/1", "npc": "mage", "finish": "stop"},
            {"id": "s-1/2", "npc": "blacksmith", "finish": "stop"},
        ],
        "stopped": "bound",
    },
    {"type": "ping", "id": 9},
    {"type": "pong", "id": 9},
    {
        "type": "error",
        "id": "t-8",
        "code": "rate_limited",
        "message": "upstream rate limit reached; retry later",
        "retryable": True,
        "retry_after_ms": 2500,
    },
]


#: more examples of a kind that already has its vector, each in ``<name>.msgpack`` /
#: ``<name>.json`` and listed in ``index.json`` under ``variants`` ({name, type})
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    (
        "error-refused",
        {
            "type": "error",
            "id": "t-7",
            "code": "bad_request",
            "message": "field 'id': a request with this id is already in flight",
            "retryable": False,
            "refused": "say",
        },
    ),
    (
        "error-unsupported",
        {
            "type": "error",
            "code": "unsupported_protocol",
            "message": "field 'protocol': this version is not supported; supported versions: 1",
            "retryable": False,
            "refused": "hello",
            "supported": [1],
        },
    ),
]


def _tagged(value: Any) -> Any:
    """JSON form of a decoded value that keeps what JSON cannot say (big ints, bin, floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else {"$int": str(value)}
    if isinstance(value, float):
        return {"$float": value}
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    raise TypeError(type(value))


def _case(name: str, raw: bytes, value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "hex": raw.hex(),
        "canonical_hex": pack(value).hex(),
        "value": _tagged(value),
        **extra,
    }


def codec_cases() -> list[dict[str, Any]]:
    """msgpack type coverage: every form the decoders must read."""
    big = 2**64 - 1
    cases = [
        _case("nil", b"\xc0", None),
        _case("false", b"\xc2", False),
        _case("true", b"\xc3", True),
        _case("positive fixint", b"\x7f", 127),
        _case("negative fixint", b"\xe0", -32),
        _case("uint8", b"\xcc\xff", 255),
        _case("uint16", b"\xcd\x01\x00", 256),
        _case("uint32", b"\xce\x00\x01\x00\x00", 65536),
        _case("uint64 2^32", b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 2**32),
        _case("int8", b"\xd0\x80", -128),
        _case("int16", b"\xd1\x80\x00", -32768),
        _case("int32", b"\xd2\x80\x00\x00\x00", -(2**31)),
        _case("int64 -2^40", b"\xd3" + struct.pack(">q", -(2**40)), -(2**40)),
        _case("uint64 max", b"\xcf" + struct.pack(">Q", big), big, needs_int64=True),
        _case("int64 min", b"\xd3" + struct.pack(">q", -(2**63)), -(2**63), needs_int64=True),
        _case("uint64 2^53+1", b"\xcf" + struct.pack(">Q", 2**53 + 1), 2**53 + 1, needs_int64=True),
        _case("non-canonical uint16 holding 5", b"\xcd\x00\x05", 5),
        _case("non-canonical int32 holding -1", b"\xd2\xff\xff\xff\xff", -1),
        _case("float64", b"\xcb" + struct.pack(">d", 1.5), 1.5),
        _case("float64 negative", b"\xcb" + struct.pack(">d", -0.25), -0.25),
        _case("float64 large", b"\xcb" + struct.pack(">d", 1e300), 1e300),
        _case("float32 read as float64", b"\xca" + struct.pack(">f", 1.5), 1.5),
        _case("fixstr empty", b"\xa0", ""),
        _case("fixstr utf-8", b"\xa3\xe6\xa0\x87", "标"),
        _case("str8", b"\xd9\x20" + b"a" * 32, "a" * 32),
        _case("str16", b"\xda\x01\x00" + b"b" * 256, "b" * 256),
        _case("non-canonical str32 holding 'cc'", b"\xdb\x00\x00\x00\x02cc", "cc"),
        _case("non-canonical str8 holding 'abc'", b"\xd9\x03abc", "abc"),
        _case("bin8", b"\xc4\x03\x00\x01\xff", b"\x00\x01\xff"),
        _case("bin16", b"\xc5\x01\x00" + b"\x07" * 256, b"\x07" * 256),
        _case("non-canonical bin32", b"\xc6\x00\x00\x00\x02\x08\x08", b"\x08\x08"),
        _case("fixarray", b"\x93\x01\xa1x\xc0", [1, "x", None]),
        _case("empty array", b"\x90", []),
        _case("array16", b"\xdc\x00\x10" + b"\x01" * 16, [1] * 16),
        _case("non-canonical array32", b"\xdd\x00\x00\x00\x02\x01\x02", [1, 2]),
        _case("fixmap sorted", b"\x82\xa1a\x01\xa1b\x02", {"a": 1, "b": 2}),
        _case("fixmap unsorted input", b"\x82\xa1b\x02\xa1a\x01", {"a": 1, "b": 2}),
        _case("empty map", b"\x80", {}),
        _case(
            "map keys beyond the BMP: UTF-16 order in, UTF-8 byte order out",
            b"\x83\xa1z\x03\xa4\xf0\x9f\x98\x80\x01\xa3\xef\xbd\xa1\x02",
            {"z": 3, "\U0001f600": 1, "\uff61": 2},
        ),
        _case(
            "map16",
            b"\xde\x00\x10"
            + b"".join(bytes([0xA2, 0x6B, 0x61 + i]) + bytes([i]) for i in range(16)),
            {"k" + chr(0x61 + i): i for i in range(16)},
        ),
        _case("non-canonical map32", b"\xdf\x00\x00\x00\x01\xa1k\xc3", {"k": True}),
        _case("nested", b"\x81\xa1m\x92\x81\xa1n\x90\xc2", {"m": [{"n": []}, False]}),
    ]
    return cases


INVALID: list[dict[str, str]] = [
    {"name": "empty input", "hex": ""},
    {"name": "reserved type byte 0xc1", "hex": "c1"},
    {"name": "truncated uint16", "hex": "cd01"},
    {"name": "truncated str8 body", "hex": "d905616263"},
    {"name": "truncated array", "hex": "9201"},
    {"name": "truncated map value", "hex": "81a161"},
    {"name": "truncated float64", "hex": "cb3ff8"},
    {"name": "str32 length far past the end", "hex": "dbffffffff61"},
    {"name": "array32 count far past the end", "hex": "ddffffffff"},
    {"name": "invalid utf-8 in str", "hex": "a2fffe"},
    {"name": "trailing bytes after one value", "hex": "81a16101" + "02"},
]


def write_all(folder: Path = HERE) -> dict[str, bytes]:
    """Write every vector file into ``folder``; return {file name: bytes written}."""
    written: dict[str, bytes] = {}

    def put(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        written[name] = data

    kinds = []
    for message in MESSAGES:
        kind = message["type"]
        kinds.append(kind)
        put(f"{kind}.msgpack", pack(message))
        put(f"{kind}.json", _json(message))
    variants = []
    for name, message in VARIANTS:
        variants.append({"name": name, "type": message["type"]})
        put(f"{name}.msgpack", pack(message))
        put(f"{name}.json", _json(message))
    index = {"messages": kinds, "variants": variants, "codec": "codec.json"}
    put("index.json", _json({**index, "invalid": "invalid.json"}))
    put("codec.json", _json({"cases": codec_cases()}))
    put("invalid.json", _json({"cases": INVALID}))
    put("flows.json", _json(_sibling("make_flows").document()))
    put("canonical.json", _json(_sibling("make_canonical").document()))
    return written


def _sibling(name: str) -> Any:
    """A generator module beside this file (``make_flows.py``, ``make_canonical.py``)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


if __name__ == "__main__":
    files = write_all()
    print(f"wrote {len(files)} files to {HERE}")
