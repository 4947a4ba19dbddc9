"""The golden vectors: the files match their generator, and the codec round-trips them exactly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from npcbridge.protocol import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    DecodeError,
    decode_client,
    decode_server,
    encode,
    pack,
    unpack,
)

VECTORS = Path(__file__).parent / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())


def _generator():
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_files_match_generator(tmp_path: Path) -> None:
    written = _generator().write_all(tmp_path)
    for name, data in written.items():
        assert (VECTORS / name).read_bytes() == data, f"{name} is stale: run make_vectors.py"


def test_every_message_kind_has_a_vector() -> None:
    assert set(INDEX["messages"]) == set(CLIENT_MESSAGES) | set(SERVER_MESSAGES)


@pytest.mark.parametrize("kind", INDEX["messages"])
def test_message_vector_round_trips(kind: str) -> None:
    raw = (VECTORS / f"{kind}.msgpack").read_bytes()
    twin = _untag(json.loads((VECTORS / f"{kind}.json").read_text()))
    assert unpack(raw) == twin
    model = decode_client(raw) if kind in CLIENT_MESSAGES else decode_server(raw)
    assert encode(model) == raw


@pytest.mark.parametrize("variant", INDEX["variants"], ids=lambda v: v["name"])
def test_variant_vector_round_trips(variant: dict) -> None:
    raw = (VECTORS / f"{variant['name']}.msgpack").read_bytes()
    twin = _untag(json.loads((VECTORS / f"{variant['name']}.json").read_text()))
    assert unpack(raw) == twin and twin["type"] == variant["type"]
    kind = variant["type"]
    model = decode_client(raw) if kind in CLIENT_MESSAGES else decode_server(raw)
    assert encode(model) == raw


def _untag(value):
    if isinstance(value, dict):
        if set(value) == {"$int"}:
            return int(value["$int"])
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


@pytest.mark.parametrize(
    "case", json.loads((VECTORS / "codec.json").read_text())["cases"], ids=lambda c: c["name"]
)
def test_codec_case(case: dict) -> None:
    value = unpack(bytes.fromhex(case["hex"]))
    expected = _untag(case["value"])
    assert value == expected and type(value) is type(expected)
    assert pack(value).hex() == case["canonical_hex"]


@pytest.mark.parametrize(
    "case", json.loads((VECTORS / "invalid.json").read_text())["cases"], ids=lambda c: c["name"]
)
def test_invalid_bytes_give_decode_error(case: dict) -> None:
    with pytest.raises(DecodeError):
        unpack(bytes.fromhex(case["hex"]))


def _canonical_cases() -> list[dict]:
    return json.loads((VECTORS / "canonical.json").read_text())["cases"]


def _sent(value):
    """A canonical.json message as its sender holds it: tagged floats, None for unset fields."""
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {k: _sent(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sent(v) for v in value]
    return value


def _left_out(value):
    if isinstance(value, dict):
        return {k: _left_out(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_left_out(v) for v in value]
    return value


@pytest.mark.parametrize("case", _canonical_cases(), ids=lambda c: c["name"])
def test_canonical_case(case: dict) -> None:
    sent = _sent(case["message"])
    registry = CLIENT_MESSAGES if sent["type"] in CLIENT_MESSAGES else SERVER_MESSAGES
    assert encode(registry[sent["type"]].model_validate(sent)).hex() == case["hex"]
    decoded = unpack(bytes.fromhex(case["hex"]))
    assert decoded == _left_out(sent)
    floats = [(k, v) for k, v in _walk(decoded) if k in FLOAT_FIELDS]
    assert all(type(v) is float for _, v in floats)


FLOAT_FIELDS = json.loads((VECTORS / "canonical.json").read_text())["float_fields"]


def _walk(value, key=None):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def _as_integers(value, key=None):
    """``value`` with every whole-number float under a protocol float field made an int, as
    code or a plugin that writes ``cost_usd=2`` holds it."""
    if isinstance(value, dict):
        return {k: _as_integers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_integers(v, key) for v in value]
    if key in FLOAT_FIELDS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def test_reply_end_with_an_integer_cost_is_written_with_float64s() -> None:
    case = next(c for c in _canonical_cases() if c["message"]["type"] == "reply.end")
    sent = _as_integers(_sent(case["message"]))
    assert sent["cost_usd"] == 2 and type(sent["cost_usd"]) is int
    assert type(sent["timing"]["ttft_ms"]) is int
    assert encode(sent).hex() == case["hex"]  # a frame built as a dict, as the server does
    model = SERVER_MESSAGES["reply.end"].model_validate(sent)
    assert encode(model).hex() == case["hex"]


@pytest.mark.parametrize("case", _canonical_cases(), ids=lambda c: c["name"])
def test_integers_under_protocol_floats_are_written_as_float64(case: dict) -> None:
    """Whatever a protocol float holds (say's temperature, a memory item's at...), the encoder
    writes float64: the canonical bytes."""
    sent = _as_integers(_sent(case["message"]))
    registry = CLIENT_MESSAGES if sent["type"] in CLIENT_MESSAGES else SERVER_MESSAGES
    assert encode(_left_out(sent)).hex() == case["hex"]
    assert encode(registry[sent["type"]].model_validate(sent)).hex() == case["hex"]


def test_the_encoder_knows_every_protocol_float() -> None:
    from npcbridge.protocol.codec import ITEM_FLOATS, MAP_FLOATS, TOP_FLOATS

    names = {
        *TOP_FLOATS,
        *(n for group in (MAP_FLOATS, ITEM_FLOATS) for ns in group.values() for n in ns),
    }
    assert names == set(FLOAT_FIELDS)
