"""Protocol messages as JSON: the default body of the HTTP transport (no I/O).

The same maps as the msgpack frames, with what JSON cannot hold handled explicitly:

* byte fields (fields a message model declares as ``bytes``, such as voice audio) travel as
  base64 strings (RFC 4648, with padding); :data:`CLIENT_BYTE_FIELDS` lists them per type, and
  a server frame's ``bytes`` become base64 wherever they are;
* ``NaN``/``Infinity``, invalid UTF-8, strings holding a lone surrogate (which msgpack cannot
  carry either) and nesting deeper than :data:`~.codec.MAX_DEPTH` are refused with
  ``bad_request``, as undecodable msgpack is.

A decoded map then goes through the very same validation as a msgpack one
(:meth:`~.connection.ConnectionMachine.receive_data` with :func:`decode_json_map`).
"""

from __future__ import annotations

import base64
import binascii
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .codec import MAX_DEPTH, request_id_of
from .errors import DecodeError
from .messages import CLIENT_MESSAGES


def _holds_bytes(annotation: Any) -> bool:
    if annotation is bytes:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_holds_bytes(arg) for arg in typing.get_args(annotation))
    return False


def byte_fields(models: Mapping[str, type[BaseModel]]) -> dict[str, tuple[str, ...]]:
    """Per message type, the top-level fields its model declares as ``bytes``."""
    found: dict[str, tuple[str, ...]] = {}
    for mtype, model in models.items():
        names = tuple(
            field.alias or name
            for name, field in model.model_fields.items()
            if _holds_bytes(field.annotation)
        )
        if names:
            found[mtype] = names
    return found


#: the byte fields of client messages, which JSON bodies carry as base64
CLIENT_BYTE_FIELDS = byte_fields(CLIENT_MESSAGES)


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _check(value: Any) -> int:
    """The nesting depth of ``value``; raises on a string holding a lone surrogate."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise DecodeError("not a JSON value: a string holds a lone surrogate") from None
            continue
        if isinstance(item, dict):
            stack.extend((k, level) for k in item)
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level + 1)
        stack.extend((v, level + 1) for v in item)
    return deepest


def decode_json_map(
    data: bytes, fields: dict[str, tuple[str, ...]] = CLIENT_BYTE_FIELDS
) -> dict[str, Any]:
    """Decode a JSON body into a message map (byte ``fields`` from base64); raise
    :class:`DecodeError` as :func:`~.codec.decode_map` does for msgpack."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise DecodeError("not a JSON value: invalid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not a JSON value: {exc.msg} at character {exc.pos}") from None
    except ValueError:  # NaN/Infinity, or an integer too long to read
        raise DecodeError("not a JSON value: NaN, Infinity or an oversized number") from None
    except RecursionError:
        raise DecodeError(f"message nests deeper than {MAX_DEPTH} levels") from None
    if _check(value) > MAX_DEPTH:
        raise DecodeError(
            f"message nests deeper than {MAX_DEPTH} levels", request_id=request_id_of(value)
        )
    if not isinstance(value, dict):
        raise DecodeError("a message must be a JSON object")
    mtype = value.get("type")
    if not isinstance(mtype, str):
        raise DecodeError("a message needs a string 'type'", request_id=request_id_of(value))
    for name in fields.get(mtype, ()):
        text = value.get(name)
        if isinstance(text, str):
            try:
                value[name] = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise DecodeError(
                    f"{mtype}: field '{name}': not base64", request_id=request_id_of(value)
                ) from None
    return value


def _bytes_as_base64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def encode_json(value: Any) -> bytes:
    """A server frame (or an answer holding frames) as compact UTF-8 JSON with sorted keys;
    ``bytes`` anywhere become base64 strings."""
    return json.dumps(
        value,
        ensure_ascii=False,
        allow_nan=False,
        sort_keys=True,
        separators=(",", ":"),
        default=_bytes_as_base64,
    ).encode("utf-8")
