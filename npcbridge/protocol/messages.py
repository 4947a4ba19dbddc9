"""Pydantic models for every message of protocol v1.

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
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)

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


class Message(BaseModel):
    """Base of all messages: strict fields, unknown fields kept."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)

    if TYPE_CHECKING:
        type: str  # every message kind declares its own literal ``type``


def _no_parameters() -> JsonMap:
    return {"type": "object", "properties": {}}


class ActionSpec(Message):
    """An action the game lets an NPC take (exposed to the model as a tool)."""

    name: StrictStr = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: StrictStr = ""
    parameters: JsonMap = Field(default_factory=lambda: _no_parameters())


NonNegative = Annotated[Number, Field(ge=0)]

#: persona fields that are not model fields (they stay in ``model_extra``, where plugins and the
#: gateway read them) but that the server uses: their types are checked when a persona arrives
PERSONA_OPTIONS: dict[str, TypeAdapter[Any]] = {
    "tier": TypeAdapter(Literal["small", "large", "largest"]),
    "quality": TypeAdapter(StrictBool),
    "fallbacks": TypeAdapter(list[StrictStr]),
    "latency_budget_ms": TypeAdapter(NonNegative),
    "cacheable": TypeAdapter(StrictBool),
    "budget_usd_per_day": TypeAdapter(NonNegative),
    "system_prompt": TypeAdapter(StrictStr),
    "topics": TypeAdapter(list[StrictStr]),
    "card": TypeAdapter(JsonMap),
}


class Persona(Message):
    """Who an NPC is. Unknown fields are kept and available to plugins."""

    name: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr | None = None
    personality: StrictStr | None = None
    speech_style: StrictStr | None = None
    knowledge: list[StrictStr] = Field(default_factory=list)
    examples: list[StrictStr] = Field(default_factory=list)
    model: StrictStr | None = None
    temperature: Number | None = Field(default=None, ge=0, le=2)
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=32768)
    actions: list[ActionSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_options(self) -> Persona:
        """The fields the server reads from ``model_extra`` must have their documented type."""
        extra = self.model_extra or {}
        for name, adapter in PERSONA_OPTIONS.items():
            value = extra.get(name)
            if value is None:
                continue
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                raise PydanticCustomError(
                    "persona_option", "{reason}", {"field": name, "reason": first["msg"]}
                ) from None
        return self


# ---------------------------------------------------------------- client -> server


class Hello(Message):
    """First message of every connection."""

    type: Literal["hello"] = "hello"
    protocol: StrictInt
    client: StrictStr = ""
    token: StrictStr | None = None


class NpcDefine(Message):
    """Define or replace an NPC on this connection (``persona`` or a Character Card V2)."""

    type: Literal["npc.define"] = "npc.define"
    id: RequestId | None = None
    npc: StrictStr = Field(min_length=1, max_length=128)
    persona: Persona | None = None
    card: JsonMap | None = None


class Say(Message):
    """The player says something to an NPC; the reply streams back under the same id."""

    type: Literal["say"] = "say"
    id: RequestId
    npc: StrictStr = Field(min_length=1, max_length=128)
    player: StrictStr = Field(min_length=1, max_length=128)
    text: StrictStr
    context: JsonMap | None = None
    urgency: Urgency = "normal"
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=32768)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    stream: StrictBool = True


class Cancel(Message):
    """Stop the reply with this id at once."""

    type: Literal["cancel"] = "cancel"
    id: RequestId


class MemoryAdd(Message):
    """Push a fact the NPC should remember (about one player, or about the world)."""

    type: Literal["memory.add"] = "memory.add"
    id: RequestId | None = None
    npc: StrictStr = Field(min_length=1, max_length=128)
    player: StrictStr | None = None
    text: StrictStr = Field(min_length=1)
    importance: StrictInt = Field(default=5, ge=1, le=10)


class MemoryForget(Message):
    """Erase a player's data, for one NPC or (without ``npc``) everywhere."""

    type: Literal["memory.forget"] = "memory.forget"
    id: RequestId | None = None
    npc: StrictStr | None = None
    player: StrictStr = Field(min_length=1, max_length=128)


class MemoryQuery(Message):
    """Ask what the NPC would recall for this player (debugging)."""

    type: Literal["memory.query"] = "memory.query"
    id: RequestId
    npc: StrictStr = Field(min_length=1, max_length=128)
    player: StrictStr = Field(min_length=1, max_length=128)
    text: StrictStr | None = None
    limit: StrictInt = Field(default=10, ge=1, le=100)


class QuestGenerate(Message):
    """Generate a quest."""

    type: Literal["quest.generate"] = "quest.generate"
    id: RequestId
    theme: StrictStr = Field(min_length=1)
    difficulty: Difficulty = "medium"
    npc: StrictStr | None = None
    context: JsonMap | None = None
    #: game fields the quest must also have: {name: JSON schema}
    fields: dict[str, JsonMap] | None = None


class BarkRequest(Message):
    """One NPC in a ``barks.generate`` batch."""

    npc: StrictStr = Field(min_length=1, max_length=128)
    context: JsonMap | None = None


class BarksGenerate(Message):
    """Generate short ambient lines for many NPCs at once."""

    type: Literal["barks.generate"] = "barks.generate"
    id: RequestId
    npcs: list[BarkRequest] = Field(min_length=1, max_length=200)
    context: JsonMap | None = None


SceneName = Annotated[StrictStr, Field(min_length=1, max_length=64)]
NpcId = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class SceneStart(Message):
    """Open (or replace) a group scene of several NPCs and one player on this connection."""

    type: Literal["scene.start"] = "scene.start"
    id: RequestId | None = None
    scene: SceneName
    player: NpcId
    npcs: list[NpcId] = Field(min_length=1, max_length=32)
    player_name: StrictStr | None = Field(default=None, min_length=1, max_length=128)
    context: JsonMap | None = None
    max_replies: StrictInt | None = Field(default=None, ge=1, le=16)


class SceneSay(Message):
    """The player speaks in a scene; NPC replies stream under ``<id>/<n>``, then ``scene.done``."""

    type: Literal["scene.say"] = "scene.say"
    id: RequestId
    scene: SceneName
    text: StrictStr = Field(min_length=1)
    to: NpcId | None = None
    context: JsonMap | None = None
    max_replies: StrictInt | None = Field(default=None, ge=1, le=16)
    urgency: Urgency = "normal"


class SceneAdd(Message):
    """Add an NPC to a running scene."""

    type: Literal["scene.add"] = "scene.add"
    id: RequestId | None = None
    scene: SceneName
    npc: NpcId


class SceneRemove(Message):
    """Remove an NPC from a running scene (its reply in progress is cancelled)."""

    type: Literal["scene.remove"] = "scene.remove"
    id: RequestId | None = None
    scene: SceneName
    npc: NpcId


class SceneInterrupt(Message):
    """Stop the NPCs of a scene talking now (the scene stays open)."""

    type: Literal["scene.interrupt"] = "scene.interrupt"
    id: RequestId | None = None
    scene: SceneName


class SceneEnd(Message):
    """Close a scene (interrupting it first)."""

    type: Literal["scene.end"] = "scene.end"
    id: RequestId | None = None
    scene: SceneName


class Ping(Message):
    """Application-level liveness check."""

    type: Literal["ping"] = "ping"
    id: RequestId | None = None


class Extension(Message):
    """A message whose type starts with ``x.``; routed to plugins."""

    type: StrictStr
    id: RequestId | None = None


# ---------------------------------------------------------------- server -> client


class Limits(Message):
    """Limits announced in ``welcome``."""

    max_message_bytes: StrictInt
    max_in_flight: StrictInt


class Welcome(Message):
    """Answer to ``hello``."""

    type: Literal["welcome"] = "welcome"
    protocol: StrictInt = PROTOCOL_VERSION
    session: StrictStr
    server: StrictStr
    models: list[StrictStr]
    features: list[StrictStr]
    limits: Limits


class Ok(Message):
    """Success answer to ``npc.define``, ``memory.add`` and ``memory.forget``."""

    type: Literal["ok"] = "ok"
    id: RequestId | None = None
    removed: StrictInt | None = None


class ReplyStart(Message):
    """A reply begins."""

    type: Literal["reply.start"] = "reply.start"
    id: RequestId
    npc: StrictStr
    model: StrictStr


class ReplyDelta(Message):
    """A piece of reply text, in order (``seq`` counts from 0)."""

    type: Literal["reply.delta"] = "reply.delta"
    id: RequestId
    seq: StrictInt
    text: StrictStr


class Usage(Message):
    """Tokens the upstream reported for a turn, or estimated (``estimated: true``) when it
    reported none (a cancelled or broken stream)."""

    input_tokens: StrictInt = 0
    output_tokens: StrictInt = 0
    estimated: StrictBool | None = None


class Timing(Message):
    """Milliseconds spent queued, until the first token, and in total."""

    queue_ms: Number = 0
    ttft_ms: Number = 0
    total_ms: Number = 0


class ReplyEnd(Message):
    """A reply is complete (or was cancelled, filtered or failed after deltas were sent)."""

    type: Literal["reply.end"] = "reply.end"
    id: RequestId
    npc: StrictStr
    text: StrictStr
    finish: Finish
    model: StrictStr
    usage: Usage
    cost_usd: Number
    timing: Timing
    rewritten: StrictBool | None = None
    actions: list[dict[str, Any]] | None = None
    emotes: list[StrictStr] | None = None


class Emote(Message):
    """A stage direction (``*smiles*``) taken out of the spoken text, sent as it is found."""

    type: Literal["emote"] = "emote"
    id: RequestId
    npc: StrictStr
    emote: StrictStr


class Action(Message):
    """An NPC decided to act; ``args`` were validated against the declared schema."""

    type: Literal["action"] = "action"
    id: RequestId
    npc: StrictStr
    name: StrictStr
    args: dict[str, Any]


class MemoryItem(Message):
    """One recalled memory."""

    text: StrictStr
    kind: StrictStr
    importance: StrictInt
    at: Number
    score: Number | None = None


class Memory(Message):
    """Answer to ``memory.query``."""

    type: Literal["memory"] = "memory"
    id: RequestId
    items: list[MemoryItem]


class Quest(Message):
    """Answer to ``quest.generate``: a validated quest, how it was obtained and its cost."""

    type: Literal["quest"] = "quest"
    id: RequestId
    quest: dict[str, Any]
    source: Literal["json", "repaired", "text"] | None = None
    model: StrictStr | None = None
    usage: Usage | None = None
    cost_usd: Number | None = None


class BarkResult(Message):
    """One NPC's bark, or its error."""

    npc: StrictStr
    text: StrictStr | None = None
    error: dict[str, Any] | None = None


class Barks(Message):
    """Answer to ``barks.generate``: one result per requested NPC, in request order."""

    type: Literal["barks"] = "barks"
    id: RequestId
    results: list[BarkResult]


class SceneReply(Message):
    """One NPC reply of a scene exchange."""

    id: StrictStr
    npc: StrictStr
    finish: Finish


class SceneDone(Message):
    """A scene exchange is over: who replied, and why it stopped."""

    type: Literal["scene.done"] = "scene.done"
    id: RequestId
    scene: StrictStr
    replies: list[SceneReply]
    stopped: Literal["quiet", "bound", "interrupted", "error"]


class Pong(Message):
    """Answer to ``ping``."""

    type: Literal["pong"] = "pong"
    id: RequestId | None = None


class Error(Message):
    """Something went wrong; ``id`` names the request when there was one."""

    type: Literal["error"] = "error"
    id: RequestId | None = None
    code: StrictStr
    message: StrictStr
    retryable: StrictBool = False
    retry_after_ms: StrictInt | None = None
    #: the type of the message this error refuses (absent when it ends an accepted request)
    refused: StrictStr | None = None
    #: ``unsupported_protocol``: the protocol versions this server speaks
    supported: list[StrictInt] | None = None


CLIENT_MESSAGES: dict[str, type[Message]] = {
    m.model_fields["type"].default: m
    for m in (
        Hello,
        NpcDefine,
        Say,
        Cancel,
        MemoryAdd,
        MemoryForget,
        MemoryQuery,
        QuestGenerate,
        BarksGenerate,
        SceneStart,
        SceneSay,
        SceneAdd,
        SceneRemove,
        SceneInterrupt,
        SceneEnd,
        Ping,
    )
}

SERVER_MESSAGES: dict[str, type[Message]] = {
    m.model_fields["type"].default: m
    for m in (
        Welcome,
        Ok,
        ReplyStart,
        ReplyDelta,
        ReplyEnd,
        Emote,
        Action,
        Memory,
        Quest,
        Barks,
        SceneDone,
        Pong,
        Error,
    )
}

ClientMessage = Annotated[Message, "any message in CLIENT_MESSAGES or an Extension"]
