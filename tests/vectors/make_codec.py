"""The codec vectors (``codec.json``, ``invalid.json``): msgpack type coverage every decoder must
read, and byte strings every decoder must reject. ``make_vectors.py`` writes the files."""

from __future__ import annotations

import struct
from typing import Any

from npcbridge.protocol import pack


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
    """One case: the input bytes, what a canonical encoder writes for the value, the value."""
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


def document() -> dict[str, Any]:
    """The content of ``codec.json``."""
    return {"cases": codec_cases()}


def invalid_document() -> dict[str, Any]:
    """The content of ``invalid.json``."""
    return {"cases": INVALID}
