"""JSON bodies of the HTTP transport: what JSON cannot hold is refused or carried as base64."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from npcbridge.protocol import DecodeError
from npcbridge.protocol.codec import MAX_DEPTH, validate
from npcbridge.protocol.json_codec import byte_fields, decode_json_map, encode_json
from npcbridge.protocol.messages import CLIENT_MESSAGES


class Sound(BaseModel):
    type: str
    audio: bytes
    mouth: bytes | None = None
    text: str = ""


def test_byte_fields_are_found_in_the_models() -> None:
    assert byte_fields({"x.sound": Sound}) == {"x.sound": ("audio", "mouth")}


def test_byte_fields_travel_as_base64() -> None:
    models = {"x.sound": Sound}
    raw = decode_json_map(b'{"type": "x.sound", "audio": "AAH/", "text": "AAH/"}', models)
    assert raw == {"type": "x.sound", "audio": b"\x00\x01\xff", "text": "AAH/"}
    with pytest.raises(DecodeError, match="x.sound: field 'audio': not base64"):
        decode_json_map(b'{"type": "x.sound", "audio": "not base64!", "id": 4}', models)
    assert json.loads(encode_json({"audio": b"\x00\x01\xff", "n": [b""]})) == {
        "audio": "AAH/",
        "n": [""],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "a message must be a JSON object"),
        (b'{"id": 1}', "a message needs a string 'type'"),
        (b'{"type": "say", "x": NaN}', "not a JSON value: NaN, Infinity or an oversized number"),
        (b'{"type": "say", "x": -Infinity}', "not a JSON value: NaN"),
        (b'{"type": "say", "x": 1e400}', "not a JSON value: NaN, Infinity or an oversized number"),
        (b'{"type": "say", "text": "\\ud800"}', "not a JSON value: a string holds a lone"),
        (b'{"type": "say", "\\udfff": 1}', "not a JSON value: a string holds a lone"),
        (b'{"type": "s\xff"}', "not a JSON value: invalid UTF-8"),
        (b'{"type": ', "not a JSON value: Expecting value at character 9"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "message nests deeper than 32"),
        (b"[" * 100_000, "message nests deeper than 32"),
    ],
)
def test_what_json_cannot_carry_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_json_map(body)
    assert caught.value.message.startswith(message)


def test_a_deep_message_is_refused_with_its_id() -> None:
    body = {"type": "say", "id": 5, "context": {}}
    inner = body["context"]
    for _ in range(MAX_DEPTH):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(DecodeError) as caught:
        decode_json_map(json.dumps(body).encode())
    assert caught.value.request_id == 5


def test_encoding_is_compact_sorted_utf8_and_refuses_nan() -> None:
    assert encode_json({"b": "é", "a": 1.0}) == '{"a":1.0,"b":"é"}'.encode()
    with pytest.raises(ValueError):
        encode_json({"x": float("nan")})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.0", 1),
        ("50.0", 50),
        ("-0.0", 0),
        ("1e2", 100),
        ("2.5e1", 25),
        ("9007199254740993.0", 9007199254740993),  # read exactly, not through a float
        ("9223372036854775807.0", 2**63 - 1),
        ("-9223372036854775808.0", -(2**63)),
        ("9223372036854775808.0", 2.0**63),  # beyond int64: stays a float
        ("1.5", 1.5),
        ("1e-3", 0.001),
        ("7", 7),
    ],
)
def test_a_whole_number_is_an_integer(text: str, value: float) -> None:
    """JSON has one number type: an integral value is an integer, whatever its spelling."""
    read = decode_json_map(b'{"type": "say", "x": ' + text.encode() + b"}")["x"]
    assert read == value and type(read) is type(value)


def _fitted(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` sent as JSON, decoded, and validated as the server does."""
    raw = decode_json_map(json.dumps(message).encode())
    validate(dict(raw), CLIENT_MESSAGES)
    return raw


SAY_FIELDS = {"type": "say", "id": 1, "npc": "smith", "player": "p1", "text": "hi"}


def test_an_empty_array_where_a_map_is_wanted_is_the_empty_map() -> None:
    """What ``HttpService:JSONEncode({})`` and ``util.TableToJSON({})`` write for an empty
    table: ``[]``, read as the empty value of the kind the model wants, at any depth."""
    assert _fitted({**SAY_FIELDS, "context": [], "effects": []})["context"] == {}
    persona = {"name": "Brom", "actions": {}, "knowledge": {}, "topics": {}, "card": [],
               "state": {"on_action": []}}  # fmt: skip
    defined = _fitted({"type": "npc.define", "npc": "smith", "persona": persona, "card": []})
    assert defined["card"] == {} and defined["persona"] == {
        "name": "Brom", "actions": [], "knowledge": [], "topics": [], "card": {},
        "state": {"on_action": {}},
    }  # fmt: skip
    barks = _fitted({"type": "barks.generate", "id": 2, "npcs": [{"npc": "a", "context": []}]})
    assert barks["npcs"] == [{"npc": "a", "context": {}}]
    quest = _fitted({"type": "quest.generate", "id": 3, "theme": "rats", "fields": {"loot": []}})
    assert quest["fields"] == {"loot": {}}
    watch = {"type": "npc.state", "id": 4, "npc": "g", "op": "unwatch", "names": {}}
    assert _fitted(watch)["names"] == []


def test_null_for_a_field_that_may_be_left_out_is_the_field_left_out() -> None:
    """What ``minetest.write_json({})`` writes for an empty table: ``null``."""
    persona = {"name": "Brom", "actions": None, "examples": None, "state": {"on_action": None}}
    defined = _fitted({"type": "npc.define", "id": None, "npc": "smith", "persona": persona})
    assert defined == {"type": "npc.define", "npc": "smith",
                       "persona": {"name": "Brom", "state": {}}}  # fmt: skip
    said = _fitted({**SAY_FIELDS, "context": None, "urgency": None, "stream": None})
    assert said == SAY_FIELDS
    # a field that must be there stays null, and is refused naming it
    with pytest.raises(DecodeError, match="say: field 'text': Input should be a valid string"):
        _fitted({**SAY_FIELDS, "text": None})


def test_a_game_s_own_values_are_not_touched() -> None:
    """Inside a ``context`` (JSON values the models leave open) ``[]`` and ``null`` stay."""
    context = {"inventory": [], "flags": {}, "target": None, "extra": {"seen": []}}
    said = _fitted({**SAY_FIELDS, "context": context, "x_plugin": [], "x_null": None})
    assert said["context"] == context and said["x_plugin"] == [] and said["x_null"] is None
    unknown = decode_json_map(b'{"type": "x.game", "id": 1, "data": [], "more": null}')
    assert unknown == {"type": "x.game", "id": 1, "data": [], "more": None}


@pytest.mark.parametrize(
    ("message", "field", "wanted"),
    [
        ({**SAY_FIELDS, "context": ["s3cret-value"]}, "context", "a valid dictionary"),
        ({"type": "npc.define", "npc": "s", "persona": {"name": "B", "actions": {"k": 1}}},
         "persona.actions", "a valid list"),
        ({"type": "npc.define", "npc": "s", "persona": ["s3cret-value"]}, "persona", "dictionary"),
    ],
)  # fmt: skip
def test_a_non_empty_value_of_the_wrong_kind_is_refused_naming_the_field(
    message: dict[str, Any], field: str, wanted: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        _fitted(message)
    refused = caught.value.message
    assert f"field '{field}'" in refused and wanted in refused, refused
    assert "s3cret" not in refused and "'k'" not in refused


class Clip(BaseModel):
    audio: bytes


class Clips(BaseModel):
    type: str
    clips: list[Clip] = []


def test_a_nested_byte_field_is_read_and_named_by_its_path() -> None:
    models = {"x.clips": Clips}
    raw = decode_json_map(b'{"type": "x.clips", "clips": [{"audio": "AAH/"}]}', models)
    assert raw["clips"] == [{"audio": b"\x00\x01\xff"}]
    with pytest.raises(DecodeError, match="x.clips: field 'clips.1.audio': not base64"):
        decode_json_map(b'{"type": "x.clips", "clips": [{"audio": ""}, {"audio": "!"}]}', models)
