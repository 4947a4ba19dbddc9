"""The Python codec beyond the golden vectors: ext values, and nesting bounded while unpacking."""

from __future__ import annotations

import tracemalloc

import msgpack
import pytest

from npcbridge.protocol import DecodeError, decode_map, encode, pack, unpack
from npcbridge.protocol.codec import MAX_DEPTH
from npcbridge.protocol.messages import NpcDefine, Persona

FRAME = 65536  # server.max_message_bytes


def say_with_context(context: bytes, *, id_last: bool = False) -> bytes:
    """A ``say`` map whose ``context`` value is the raw bytes given (``id`` before or after)."""
    head: dict[str, object] = {"type": "say", "npc": "b", "player": "p", "text": "hi"}
    tail = msgpack.packb("id") + msgpack.packb(77)
    packed = msgpack.packb(head if id_last else {"id": 77, **head})
    body = bytes([packed[0] + 1 + id_last]) + packed[1:] + msgpack.packb("context") + context
    return body + tail if id_last else body


def test_ext_values_are_written_as_ext() -> None:
    ext = msgpack.ExtType(5, b"ab")
    assert pack(ext) == b"\xd5\x05ab"
    assert pack({"x": [ext, (1, 2)]}) == b"\x81\xa1x\x92\xd5\x05ab\x92\x01\x02"


def peak_while_refused(frame: bytes) -> int:
    """The peak of memory allocated while ``decode_map`` refuses ``frame`` (bytes)."""
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            decode_map(frame)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_deep_wide_frame_is_refused_before_anything_is_allocated() -> None:
    # 1000 nested arrays that each declare 65535 elements: an unpacker that believes the
    # counts pre-allocates tens of MiB for a 64 KiB frame
    frame = say_with_context(b"\xdc\xff\xff" * 1000)
    frame += b"\x00" * (FRAME - len(frame))
    peak = peak_while_refused(frame)
    assert peak < 1 << 20, f"peak {peak} bytes"


def test_depth_is_refused_with_the_id_wherever_the_id_is() -> None:
    for id_last in (False, True):
        frame = say_with_context(b"\x91" * 1000 + b"\xc0", id_last=id_last)
        with pytest.raises(DecodeError) as info:
            decode_map(frame)
        assert info.value.request_id == 77
        assert f"deeper than {MAX_DEPTH}" in info.value.message


def test_depth_limit_counts_every_map_and_array() -> None:
    # the say map is level 1 and the context array level 2: 30 more arrays reach the limit
    assert decode_map(say_with_context(b"\x91" * 31 + b"\xc0"))["type"] == "say"
    with pytest.raises(DecodeError):
        decode_map(say_with_context(b"\x91" * 31 + b"\x80"))
    assert unpack(b"\x91" * 200 + b"\xc0") is not None  # no bound unless one is asked for


def test_counts_larger_than_the_bytes_left_are_truncated() -> None:
    # frames large enough to be scanned before they are unpacked
    with pytest.raises(DecodeError, match="truncated"):
        unpack(b"\xdd\x00\x01\x00\x00" + b"\x01" * 600)
    with pytest.raises(DecodeError, match="truncated"):
        unpack(b"\xdf\x00\x00\x01\x00" + b"\xa1a\x01" * 200)
    with pytest.raises(DecodeError):  # a small one: the unpacker itself refuses it
        unpack(b"\xdf\x00\x00\x00\x03\xa1a\x01")


def test_a_small_deep_wide_frame_allocates_little() -> None:
    frame = b"\xdc\xff\xff" * 170 + b"\x00\x00"  # 512 bytes: unpacked without the scan
    peak = peak_while_refused(frame)
    assert peak < 1 << 20, f"peak {peak} bytes"


def test_the_persona_fields_the_server_reads_are_typed_and_travel_unchanged() -> None:
    raw = {
        "name": "Brom",
        "tier": "large",
        "quality": True,
        "fallbacks": ["openai/gpt-oss-20b"],
        "latency_budget_ms": 800,
        "cacheable": True,
        "budget_usd_per_day": 0.5,
        "system_prompt": "Be brief.",
        "topics": ["ore"],
        "card": {"data": {"name": "Brom"}},
        "mood": "calm",
    }
    persona = Persona.model_validate(raw)
    assert persona.model_extra == {"mood": "calm"}  # only what the server does not read
    assert (persona.tier, persona.quality, persona.fallbacks) == ("large", True, raw["fallbacks"])
    assert (persona.latency_budget_ms, persona.cacheable, persona.budget_usd_per_day) == (
        800,
        True,
        0.5,
    )
    assert (persona.system_prompt, persona.topics, persona.card) == (
        "Be brief.",
        ["ore"],
        raw["card"],
    )
    lists = {"actions": [], "examples": [], "knowledge": []}  # model fields with defaults
    define = NpcDefine(id=1, npc="brom", persona=persona)
    assert unpack(encode(define))["persona"] == {**raw, **lists}
    # unset, they stay off the wire
    bare = unpack(encode(NpcDefine(id=1, npc="b", persona=Persona(name="B"))))["persona"]
    assert bare == {"name": "B", **lists}
