"""msgpack encoding and decoding of protocol messages (no I/O).

Canonical encoding, which every client reproduces byte for byte (see ``tests/vectors/``):
map keys sorted by their UTF-8 bytes, integers and strings in their smallest msgpack form,
floats always as float64, ``bytes`` as msgpack bin, ``None`` fields left out of messages.
"""

from __future__ import annotations

from typing import Any

import msgpack
from pydantic import BaseModel, ValidationError

from .errors import DecodeError, ErrorCode, ProtocolError
from .messages import (
    CLIENT_MESSAGES,
    PERSONA_OPTIONS,
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
    """Encode a message model (or an already-built dict) to canonical msgpack bytes."""
    if isinstance(message, BaseModel):
        message = message.model_dump(mode="python", exclude_none=True)
    return pack(message)


def unpack(data: bytes) -> Any:
    """Unpack msgpack bytes, raising :class:`DecodeError` on anything that is not one value."""
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
        raise DecodeError(f"not a msgpack value: nested deeper than {MAX_DEPTH} levels") from None
    except msgpack.FormatError:
        raise DecodeError("not a msgpack value: invalid type byte") from None
    except UnicodeDecodeError:
        raise DecodeError("not a msgpack value: invalid UTF-8 in a string") from None
    except (ValueError, TypeError, RecursionError) as exc:
        reason = "truncated" if "incomplete" in str(exc).lower() or not data else "malformed"
        raise DecodeError(f"not a msgpack value: {reason} input") from None
    return value


def _depth(value: Any, limit: int) -> bool:
    """Return True when ``value`` nests no deeper than ``limit`` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            if level > limit:
                return False
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            if level > limit:
                return False
            stack.extend((v, level + 1) for v in item)
    return True


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
    raw = unpack(data)
    if not isinstance(raw, dict):
        raise DecodeError("a message must be a msgpack map")
    if not _depth(raw, MAX_DEPTH):
        raise DecodeError(
            f"message nests deeper than {MAX_DEPTH} levels", request_id=request_id_of(raw)
        )
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
    """Every field name a message model (or a persona option) declares."""
    names: set[str] = set(PERSONA_OPTIONS)
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
