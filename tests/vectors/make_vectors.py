"""Write the golden vectors in this folder from the examples below.

The files this writes are the source of truth for bytes on the wire: the Python, Lua and GDScript
test suites all read them. ``tests/test_vectors.py`` fails when the files and this script disagree,
so a protocol change means: edit the examples here, run ``python tests/vectors/make_vectors.py``,
update ``docs/protocol.md`` and the three clients, commit together.

Files:
- ``<type>.msgpack`` / ``<type>.json``: one canonical message per kind and its readable twin
  (``bin`` values, such as audio, tagged ``{"$bin": "<hex>"}`` in the twin; the voice examples
  are in ``voice_examples.py``).
- ``<name>.msgpack`` / ``<name>.json``: further examples of a kind (``VARIANTS``, such as an
  ``error`` that refuses a request).
- NPC state's kinds and variants come from ``state_vectors.py`` beside this file.
- ``index.json``: the list of message kinds, and of the variants with their ``type`` (so
  clients need no directory listing).
- ``codec.json``: msgpack type-coverage cases; each has ``hex`` (input), ``canonical_hex`` (what a
  canonical encoder writes for the decoded value) and ``value`` in tagged JSON
  (``{"$int": "..."}`` for integers beyond 2^53, ``{"$bin": "<hex>"}`` for bin,
  ``{"$float": x}`` for floats) (``make_codec.py``).
- ``invalid.json``: byte strings every decoder must reject with an error value (never a crash)
  (``make_codec.py``).
- ``flows.json``: sequences of server frames and how each request must end (``make_flows.py``).
- ``http.json``: the HTTP transport's requests and answers, one flow in order (``make_http.py``).
- ``canonical.json``: messages and the bytes a canonical encoder writes for them: whole-number
  floats, unset fields, keys beyond the BMP (``make_canonical.py``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from npcbridge.protocol import pack  # noqa: E402

# the voice examples sit beside this file
sys.path.insert(0, str(HERE))
from voice_examples import VOICE_MESSAGES, VOICE_VARIANTS  # noqa: E402

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
    *VOICE_MESSAGES,
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
    *VOICE_VARIANTS,
]


def write_all(folder: Path = HERE) -> dict[str, bytes]:
    """Write every vector file into ``folder``; return {file name: bytes written}."""
    written: dict[str, bytes] = {}

    def put(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        written[name] = data

    state = _sibling("state_vectors")  # NPC state (docs/state.md)
    kinds = []
    for message in [*MESSAGES, *state.MESSAGES]:
        kind = message["type"]
        kinds.append(kind)
        put(f"{kind}.msgpack", pack(message))
        put(f"{kind}.json", _json(message))
    variants = []
    for name, message in [*VARIANTS, *state.VARIANTS]:
        variants.append({"name": name, "type": message["type"]})
        put(f"{name}.msgpack", pack(message))
        put(f"{name}.json", _json(message))
    index = {"messages": kinds, "variants": variants, "codec": "codec.json"}
    put("index.json", _json({**index, "invalid": "invalid.json"}))
    codec = _sibling("make_codec")
    put("codec.json", _json(codec.document()))
    put("invalid.json", _json(codec.invalid_document()))
    put("flows.json", _json(_sibling("make_flows").document()))
    put("canonical.json", _json(_sibling("make_canonical").document()))
    put("http.json", _json(_sibling("make_http").document()))
    return written


def _sibling(name: str) -> Any:
    """A generator module beside this file (``make_codec.py``, ``make_flows.py``, ...)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(value: Any) -> bytes:
    """The readable twin: msgpack ``bin`` (audio) as ``{"$bin": "<hex>"}``, as in codec.json."""
    text = json.dumps(_tagged(value), indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _tagged(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    return value


if __name__ == "__main__":
    files = write_all()
    print(f"wrote {len(files)} files to {HERE}")
