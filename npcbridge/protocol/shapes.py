"""What kind of value each field of a message model takes, found by walking the model once.

JSON bodies need this where msgpack does not: JSON has no bytes (a byte field travels as
base64), and the JSON writers of sandboxed Lua cannot tell an empty array from an empty
object (``{}`` is written ``[]`` or ``null``). A :class:`Shape` says, for one field, whether it
takes a map (a ``dict`` or a nested model), a list, or bytes, and the shapes inside it: a
model's fields, a map's values, a list's items. A value the models leave open (a game's
``context`` values, ``JsonValue``, unknown fields) has no shape and is never looked into.

:func:`model_shape` walks a model (nested models included: the persona of ``npc.define``, the
NPCs of ``barks.generate``) and caches the result per model.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

Kind = Literal["model", "map", "list", "bytes"]


@dataclass(frozen=True)
class Shape:
    """The kind of value a field takes (a nested ``model``, a ``map`` the model does not
    describe key by key, a ``list``, ``bytes``), and the shapes of what is inside it."""

    kind: Kind
    #: a model: its fields by wire name (only those with a shape)
    fields: Mapping[str, Shape] = field(default_factory=dict)
    #: a model: the wire names of the fields that may be left out (they have a default)
    optional: frozenset[str] = frozenset()
    #: a map's values or a list's items, when they have a shape
    inner: Shape | None = None


_MAPS = (dict, Mapping)
_LISTS = (list, Sequence)
_UNIONS = (typing.Union, types.UnionType)


def _annotation_shape(annotation: Any) -> Shape | None:
    """The shape of a field annotation; None for a scalar or an open value."""
    if annotation is bytes:
        return Shape("bytes")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_shape(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _annotation_shape(args[0])
    if origin in _UNIONS:
        shapes = [s for s in map(_annotation_shape, args) if s is not None]
        if any(s.kind == "bytes" for s in shapes):
            return Shape("bytes")
        # ``X | None`` and ``bool | Model`` have one shape; a union of a list and a map has
        # none, since an empty value could then be either
        return shapes[0] if len(shapes) == 1 else None
    if origin in _MAPS:
        return Shape("map", inner=_annotation_shape(args[1]) if len(args) == 2 else None)
    if origin in _LISTS:
        return Shape("list", inner=_annotation_shape(args[0]) if args else None)
    return None


@functools.cache
def model_shape(model: type[BaseModel]) -> Shape:
    """The shape of a model: its declared fields with the shapes found in their annotations
    (walked once per model, then cached)."""
    fields: dict[str, Shape] = {}
    optional: set[str] = set()
    for name, info in model.model_fields.items():
        wire = info.alias or name
        if not info.is_required():
            optional.add(wire)
        shape = _annotation_shape(info.annotation)
        if shape is not None:
            fields[wire] = shape
    return Shape("model", fields=fields, optional=frozenset(optional))
