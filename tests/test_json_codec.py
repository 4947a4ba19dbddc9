"""JSON bodies of the HTTP transport: what JSON cannot hold is refused or carried as base64."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from npcbridge.protocol import DecodeError
from npcbridge.protocol.codec import MAX_DEPTH
from npcbridge.protocol.json_codec import byte_fields, decode_json_map, encode_json


class Sound(BaseModel):
    type: str
    audio: bytes
    mouth: bytes | None = None
    text: str = ""


def test_byte_fields_are_found_in_the_models() -> None:
    assert byte_fields({"x.sound": Sound}) == {"x.sound": ("audio", "mouth")}


def test_byte_fields_travel_as_base64() -> None:
    fields = {"x.sound": ("audio", "mouth")}
    raw = decode_json_map(b'{"type": "x.sound", "audio": "AAH/", "text": "AAH/"}', fields)
    assert raw == {"type": "x.sound", "audio": b"\x00\x01\xff", "text": "AAH/"}
    with pytest.raises(DecodeError, match="x.sound: field 'audio': not base64"):
        decode_json_map(b'{"type": "x.sound", "audio": "not base64!", "id": 4}', fields)
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
