"""Protocol messages as JSON: the default body of the HTTP transport (no I/O).

The same maps as the msgpack frames, with what JSON cannot hold handled explicitly. A client
message is fitted to the model of its type (the walk of :mod:`~.shapes`, nested models
included), so only fields the models declare are touched, never a game's own ``context``:

* byte fields (fields a message model declares as ``bytes``, such as voice audio) travel as
  base64 strings (RFC 4648, with padding); :data:`CLIENT_BYTE_FIELDS` lists the top-level ones
  per type, and a server frame's ``bytes`` become base64 wherever they are;
* the JSON writers of sandboxed Lua cannot tell an empty array from an empty object, so an empty
  array where a model wants a map (or a nested model) is the empty map, an empty object where it
  wants a list is the empty list, and ``null`` for a field that may be left out is the field
  left out (``minetest.write_json`` writes ``{}`` as ``null``); a non-empty value of the wrong
  kind is still refused by validation;
* JSON has one number type, so a number with an integral value is read as an integer
  (``1.0`` is ``1``, within the int64 range), as Lua's and Garry's Mod's JSON writers put every
  whole number with a fraction; other numbers stay floats, and a float field takes an integer;
* ``NaN``/``Infinity``, invalid UTF-8, strings holding a lone surrogate (which msgpack cannot
  carry either) and nesting deeper than :data:`~.codec.MAX_DEPTH` are refused with
  ``bad_request``, as undecodable msgpack is.

A decoded map then goes through the very same validation as a msgpack one
(:meth:`~.connection.ConnectionMachine.receive_data` with :func:`decode_json_map`).
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .codec import MAX_DEPTH, request_id_of
from .errors import DecodeError
from .messages import CLIENT_MESSAGES
from .shapes import Shape, model_shape


def byte_fields(models: Mapping[str, type[BaseModel]]) -> dict[str, tuple[str, ...]]:
    """Per message type, the top-level fields its model declares as ``bytes``."""
    found: dict[str, tuple[str, ...]] = {}
    for mtype, model in models.items():
        shape = model_shape(model)
        names = tuple(name for name, inner in shape.fields.items() if inner.kind == "bytes")
        if names:
            found[mtype] = names
    return found


#: the byte fields of client messages, which JSON bodies carry as base64
CLIENT_BYTE_FIELDS = byte_fields(CLIENT_MESSAGES)


def _no_constant(name: str) -> Any:
    raise ValueError(name)


#: the integers a msgpack frame can carry (int64 and uint64 would differ; the protocol's
#: integers are ids, counts and limits, all inside int64)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _read_number(text: str) -> int | float:
    """A JSON number with a fraction or an exponent: the integer it is when its value is
    integral and fits int64 (read exactly, not through a float), else a float."""
    exact = decimal.Decimal(text)
    if _INT64_MIN <= exact <= _INT64_MAX and exact == exact.to_integral_value():
        return int(exact)
    number = float(text)
    if math.isinf(number):  # 1e400: too large for a float, refused as Infinity is
        raise ValueError("an oversized number")
    return number


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
    data: bytes, models: Mapping[str, type[BaseModel]] = CLIENT_MESSAGES
) -> dict[str, Any]:
    """Decode a JSON body into a message map fitted to the model of its type in ``models``
    (module docstring); raise :class:`DecodeError` as :func:`~.codec.decode_map` does for
    msgpack."""
    try:
        value = json.loads(
            data.decode("utf-8"), parse_constant=_no_constant, parse_float=_read_number
        )
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
    model = models.get(mtype)
    if model is not None:
        _Fitting(mtype, value).fit_model(value, model_shape(model), "")
    return value


class _Fitting:
    """Fits one decoded JSON message to its model's shape, in place."""

    def __init__(self, mtype: str, message: dict[str, Any]) -> None:
        self.mtype = mtype
        self.message = message

    def fit_model(self, value: dict[str, Any], shape: Shape, where: str) -> None:
        """A model's map: ``null`` for a field that may be left out is the field left out,
        and every declared field is fitted to its shape."""
        for name in [k for k, v in value.items() if v is None and k in shape.optional]:
            del value[name]
        for name, inner in shape.fields.items():
            if name in value:
                value[name] = self.fit(value[name], inner, f"{where}.{name}" if where else name)

    def fit(self, value: Any, shape: Shape, where: str) -> Any:
        """``value`` fitted to ``shape``: base64 read for bytes, an empty array for a map (or
        model) and an empty object for a list are the empty value the field wants; anything
        else of the wrong kind is left for validation to refuse."""
        kind = shape.kind
        if kind == "bytes":
            return self._bytes(value, where) if isinstance(value, str) else value
        if isinstance(value, list):
            if kind != "list":
                return {} if not value else value
            if shape.inner is not None:
                return [self.fit(v, shape.inner, f"{where}.{i}") for i, v in enumerate(value)]
            return value
        if isinstance(value, dict):
            if kind == "list":
                return [] if not value else value
            if kind == "model":
                self.fit_model(value, shape, where)
            elif shape.inner is not None:
                # a map's keys are the game's own: an error names the map, not the key
                for key, item in value.items():
                    value[key] = self.fit(item, shape.inner, where)
        return value

    def _bytes(self, text: str, where: str) -> bytes:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError(
                f"{self.mtype}: field '{where}': not base64",
                request_id=request_id_of(self.message),
            ) from None


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
