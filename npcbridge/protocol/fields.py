"""The field types every protocol message shares: request ids, numbers, JSON maps, the small
enumerations, and :class:`Message`, the base of every message model.

Client messages are validated strictly (a wrong type is a ``bad_request``, never a silent coercion).
Every model keeps unknown fields (``extra="allow"``): plugins may add fields to any message and
peers ignore fields they do not know.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainValidator,
    StrictFloat,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

#: longest string request id, in UTF-8 bytes; integer ids must fit in a signed 64-bit integer
MAX_ID_BYTES = 128
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def valid_request_id(value: Any) -> bool:
    """True for a usable request id: a string of at most 128 UTF-8 bytes or an int64."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    # a str of more than 128 code points is longer than 128 bytes: skip encoding a huge one
    return (
        isinstance(value, str)
        and len(value) <= MAX_ID_BYTES
        and len(value.encode()) <= MAX_ID_BYTES
    )


def _request_id(value: Any) -> str | int:
    if not valid_request_id(value):
        raise PydanticCustomError(
            "request_id",
            "must be a string of at most 128 UTF-8 bytes or an integer that fits in 64 bits",
        )
    return value  # type: ignore[no-any-return]


RequestId = Annotated[str | int, PlainValidator(_request_id)]
Number = StrictFloat | StrictInt
#: a JSON value (what game ``context`` maps hold): maps with string keys, arrays, strings,
#: numbers, booleans and nil; msgpack bin is refused because it cannot reach a prompt as text
JsonMap = dict[str, JsonValue]
Urgency = Literal["realtime", "normal", "deep"]
Finish = Literal["stop", "length", "cancelled", "filtered", "error"]
Difficulty = Literal["easy", "medium", "hard"]
NonNegative = Annotated[Number, Field(ge=0)]
SceneName = Annotated[StrictStr, Field(min_length=1, max_length=64)]
NpcId = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class Message(BaseModel):
    """Base of all messages: strict fields, unknown fields kept."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    if TYPE_CHECKING:
        type: str  # every message kind declares its own literal ``type``
