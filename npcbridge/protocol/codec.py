"""msgpack encoding and decoding of protocol messages (no I/O).

Canonical encoding, which every client reproduces byte for byte (see ``tests/vectors/``):
map keys sorted by their UTF-8 bytes, integers and strings in their smallest msgpack form,
floats always as float64 (and the protocol floats, such as ``cost_usd``, as float64 even when
they hold an integer), ``bytes`` as msgpack bin, ``None`` fields left out of messages.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
from pydantic import BaseModel, ValidationError

from .errors import DecodeError, ErrorCode, ProtocolError
from .messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Extension,
    Message,
    valid_request_id,
)

#: Deepest nesting of maps/arrays a client message may have.
MAX_DEPTH = 32

_packer = msgpack.Packer(use_bin_type=True, use_single_float=False, autoreset=True)


def canonical(value: Any) -> Any:
    """Return ``value`` with every map's keys sorted (the canonical order)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=_key_bytes)}
    if isinstance(value, msgpack.ExtType):
        return value  # a tuple, but written as ext: not an array
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def _key_bytes(key: Any) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else str(key).encode("utf-8")


def pack(value: Any) -> bytes:
    """Pack any msgpack-able value canonically."""
    return _packer.pack(canonical(value))


def encode_reply_delta(request_id: str | int, seq: int, text: str) -> bytes:
    """Encode a ``reply.delta`` fast (the hot path); same bytes as :func:`encode` would give."""
    return _packer.pack({"id": request_id, "seq": seq, "text": text, "type": "reply.delta"})


def encode(message: BaseModel | dict[str, Any]) -> bytes:
    """Encode a message model (or an already-built dict) to canonical msgpack bytes; its
    protocol floats are written as float64 even when code or a plugin put an integer there."""
    if isinstance(message, BaseModel):
        message = message.model_dump(mode="python", exclude_none=True)
    return pack(with_protocol_floats(message))


#: where the protocol floats sit (docs/protocol.md, "Canonical encoding"; their names are
#: ``float_fields`` in tests/vectors/canonical.json): top-level fields, fields of a map under a
#: top-level key, fields of each map in a top-level list, and fields of a map two levels down
TOP_FLOATS = ("temperature", "cost_usd")
MAP_FLOATS = {
    "timing": ("queue_ms", "ttft_ms", "total_ms"),
    "persona": ("temperature",),
    "voice": ("ttfa_ms", "cost_usd", "speed"),
}
ITEM_FLOATS = {"items": ("at", "score")}
NESTED_FLOATS = {("persona", "voice"): ("speed",)}
_FLOAT_KEYS = frozenset((*TOP_FLOATS, *MAP_FLOATS, *ITEM_FLOATS))


def with_protocol_floats(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with an integer under a protocol float made a float (a copy of the maps that
    change; the caller's frame is left as it was)."""
    if _FLOAT_KEYS.isdisjoint(message):  # most frames: nothing to look at
        return message
    fixed = _floated(message, TOP_FLOATS)
    for key, names in MAP_FLOATS.items():
        inner = message.get(key)
        if isinstance(inner, dict) and (new := _floated(inner, names)) is not inner:
            fixed = dict(fixed) if fixed is message else fixed
            fixed[key] = new
    for key, names in ITEM_FLOATS.items():
        items = message.get(key)
        if not isinstance(items, list):
            continue
        new_items = [_floated(item, names) if isinstance(item, dict) else item for item in items]
        if any(new is not old for new, old in zip(new_items, items, strict=True)):
            fixed = dict(fixed) if fixed is message else fixed
            fixed[key] = new_items
    for (outer, inner_key), names in NESTED_FLOATS.items():
        outer_map = fixed.get(outer)
        inner = outer_map.get(inner_key) if isinstance(outer_map, dict) else None
        if isinstance(inner, dict) and (new := _floated(inner, names)) is not inner:
            fixed = dict(fixed) if fixed is message else fixed
            fixed[outer] = {**fixed[outer], inner_key: new}
    return fixed


def _floated(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``values`` with its integers under ``names`` as floats (the same map when there is none)."""
    fixed = values
    for name in names:
        value = values.get(name)
        if type(value) is int:  # not a bool, and a float already is one
            fixed = dict(values) if fixed is values else fixed
            fixed[name] = float(value)
    return fixed


#: type byte -> payload bytes after it, for scalars of a fixed size
_FIXED_SIZE = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED_SIZE |= {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
#: type byte -> (bytes of its length field, bytes between the length and the data) for str/bin/ext
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1)}
_SIZED |= {0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}
#: type byte -> (bytes of its count field, values per counted entry) for array16/32, map16/32
_COUNTED = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}
_TRUNCATED = "not a msgpack value: truncated input"


def _scan(data: bytes) -> tuple[int, tuple[int, int] | None]:
    """Walk one msgpack value without building it; return its nesting depth and where the
    value of a top-level ``id`` key lies (for the error answer).

    This runs before the real unpacker, which has no depth option and pre-allocates every
    array and map from its declared count: a container must fit in the bytes that are left,
    so a small frame cannot make it allocate much, however it nests."""
    end = len(data)
    pos = 0
    left = [1]  # values still to read in each open container (the first entry: the root)
    root_map = False
    root_values = 0
    want_id = False
    id_span: tuple[int, int] | None = None
    deepest = 0
    while left:
        if left[-1] == 0:
            left.pop()
            continue
        left[-1] -= 1
        if pos >= end:
            raise DecodeError(_TRUNCATED)
        at_root_key = at_root_value = False
        if root_map and len(left) == 2:
            at_root_key = (root_values - left[-1]) % 2 == 1
            at_root_value = not at_root_key and want_id
            want_id = False
        start, b = pos, data[pos]
        pos += 1
        count = -1
        if b <= 0x7F or b >= 0xE0:
            pass
        elif b <= 0x8F:
            count = 2 * (b & 0x0F)
        elif b <= 0x9F:
            count = b & 0x0F
        elif b <= 0xBF:
            pos += b & 0x1F
        elif b in _FIXED_SIZE:
            pos += _FIXED_SIZE[b]
        elif b in _SIZED:
            width, gap = _SIZED[b]
            pos += width + gap + int.from_bytes(data[pos : pos + width], "big")
        elif b in _COUNTED:
            width, per = _COUNTED[b]
            count = per * int.from_bytes(data[pos : pos + width], "big")
            pos += width
        else:
            raise DecodeError("not a msgpack value: invalid type byte")
        if pos > end:
            raise DecodeError(_TRUNCATED)
        if count >= 0:
            if count > end - pos:  # every value takes at least one byte
                raise DecodeError(_TRUNCATED)
            if len(left) == 1 and (0x80 <= b <= 0x8F or b in (0xDE, 0xDF)):
                root_map, root_values = True, count
            left.append(count)
            deepest = max(deepest, len(left) - 1)
        elif at_root_key:
            header = _str_header(b)
            want_id = header > 0 and pos - start - header == 2 and data[pos - 2 : pos] == b"id"
        elif at_root_value:
            id_span = (start, pos)
    return deepest, id_span


def _str_header(b: int) -> int:
    """Header bytes of a msgpack str starting with type byte ``b`` (-1: not a str)."""
    if 0xA0 <= b <= 0xBF:
        return 1
    return {0xD9: 2, 0xDA: 3, 0xDB: 5}.get(b, -1)


def unpack(data: bytes, max_depth: int | None = None) -> Any:
    """Unpack msgpack bytes, raising :class:`DecodeError` on anything that is not one value
    (or, with ``max_depth``, nests more maps/arrays than that; the error then carries a
    top-level ``id`` when one could be read)."""
    if len(data) <= _UNPACK_DIRECTLY:
        value = _unpackb(data)
        if max_depth is not None and nesting_depth(value) > max_depth:
            raise DecodeError(
                f"message nests deeper than {max_depth} levels", request_id=request_id_of(value)
            )
        return value
    depth, id_span = _scan(data)
    if max_depth is not None and depth > max_depth:
        rid = None
        if id_span is not None:
            with contextlib.suppress(ValueError):
                rid = request_id_of({"id": msgpack.unpackb(data[id_span[0] : id_span[1]])})
        raise DecodeError(f"message nests deeper than {max_depth} levels", request_id=rid)
    return _unpackb(data)


#: frames up to this many bytes are unpacked without the scan (most frames: a ``reply.delta``,
#: a ``say``): the unpacker caps each declared count at the frame's length, so however such a
#: frame nests (at most this many levels) it cannot make the unpacker allocate much
_UNPACK_DIRECTLY = 512


def nesting_depth(value: Any) -> int:
    """How many maps/arrays ``value`` nests (a small value: see ``_UNPACK_DIRECTLY``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level + 1)
        stack.extend((v, level + 1) for v in item)
    return deepest


def _unpackb(data: bytes) -> Any:
    """msgpack's unpacker, its failures as :class:`DecodeError`."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
        )
    except msgpack.ExtraData:
        raise DecodeError("not one msgpack value: trailing bytes after the message") from None
    except msgpack.StackError:
        raise DecodeError("not a msgpack value: nested too deep") from None
    except msgpack.FormatError:
        raise DecodeError("not a msgpack value: invalid type byte") from None
    except UnicodeDecodeError:
        raise DecodeError("not a msgpack value: invalid UTF-8 in a string") from None
    except (ValueError, TypeError, RecursionError) as exc:
        reason = "truncated" if "incomplete" in str(exc).lower() or not data else "malformed"
        raise DecodeError(f"not a msgpack value: {reason} input") from None
    return value


def request_id_of(raw: Any) -> str | int | None:
    """Best-effort read of a request ``id`` from an undecoded map (for error answers); None
    when there is none or it is not a usable id (an error never repeats an oversize id)."""
    if isinstance(raw, dict):
        rid = raw.get("id")
        if valid_request_id(rid):
            return rid  # type: ignore[no-any-return]
    return None


#: longest message ``type`` an error repeats in its ``refused`` field
MAX_REFUSED_TYPE = 64


def refused_type(raw: Any) -> str | None:
    """The ``type`` an error refusing ``raw`` names in ``refused`` (None when unreadable or too
    long to repeat)."""
    mtype = raw.get("type") if isinstance(raw, dict) else None
    if isinstance(mtype, str) and len(mtype) <= MAX_REFUSED_TYPE:
        return mtype
    return None


def decode_map(data: bytes) -> dict[str, Any]:
    """Decode bytes into a map with a string ``type``; raise :class:`DecodeError` otherwise."""
    raw = unpack(data, MAX_DEPTH)
    if not isinstance(raw, dict):
        raise DecodeError("a message must be a msgpack map")
    mtype = raw.get("type")
    if not isinstance(mtype, str):
        raise DecodeError("a message needs a string 'type'", request_id=request_id_of(raw))
    return raw


def validate(raw: dict[str, Any], registry: dict[str, type[Message]]) -> Message:
    """Validate a decoded map against the model for its ``type``."""
    mtype = raw["type"]
    model = registry.get(mtype)
    if model is None:
        if mtype.startswith("x."):
            model = Extension
        else:
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE,
                "field 'type': unknown message type",
                request_id=request_id_of(raw),
            )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise DecodeError(_describe(mtype, exc), request_id=request_id_of(raw)) from None


def _field_names() -> frozenset[str]:
    """Every field name a message model declares (the persona's included)."""
    names: set[str] = set()
    stack: list[type[BaseModel]] = [Message]
    while stack:
        model = stack.pop()
        names.update(model.model_fields)
        stack.extend(model.__subclasses__())
    return frozenset(names)


_FIELDS = _field_names()
#: fields holding maps whose keys the game chooses (an error names the field, not the key)
FREE_MAPS = frozenset({"context", "card", "parameters", "fields", "args"})


def _path(loc: tuple[Any, ...], ctx: dict[str, Any] | None) -> str:
    """The dotted field path of an error: declared field names and list indexes only, so a
    game's own map keys (and pydantic's union tags) are never repeated back."""
    parts: list[str] = []
    for part in loc:
        if not (isinstance(part, int) or part in _FIELDS):
            break
        parts.append(str(part))
        if part in FREE_MAPS:
            break  # what is inside is the game's own data
    if ctx and isinstance(ctx.get("field"), str):
        parts.append(ctx["field"])
    return ".".join(parts) or "message"


def _describe(mtype: str, exc: ValidationError) -> str:
    """One readable line naming the first bad field; never echoes the bad value itself."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = _path(tuple(first["loc"]), first.get("ctx"))
    if first["type"] == "invalid-json-value":
        first["msg"] = "only maps, arrays, strings, numbers, booleans and nil (no binary)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    kind = mtype if mtype in CLIENT_MESSAGES or mtype in SERVER_MESSAGES else "message"
    return f"{kind}: field '{where}': {first['msg']}{more}"


def decode_client(data: bytes) -> Message:
    """Decode and validate a client → server message."""
    return validate(decode_map(data), CLIENT_MESSAGES)


def decode_server(data: bytes) -> Message:
    """Decode and validate a server → client message."""
    return validate(decode_map(data), SERVER_MESSAGES)
