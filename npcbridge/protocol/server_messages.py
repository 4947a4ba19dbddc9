"""The messages the server sends (server -> client) and ``SERVER_MESSAGES``, their registry by
``type``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import StrictBool, StrictInt, StrictStr

from .fields import Finish, Message, Number, RequestId
from .version import PROTOCOL_VERSION
from .voice import ReplyAudio, Transcript, VoiceReport


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
    #: the NPC's state after the turn (NPCs that keep state; docs/state.md)
    state: dict[str, Any] | None = None
    #: how the reply was spoken (voiced replies only)
    voice: VoiceReport | None = None


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


class StateCrossing(Message):
    """A watched threshold a change crossed."""

    name: StrictStr
    key: StrictStr
    direction: Literal["entered", "left", "changed"]
    value: Number | StrictStr
    below: Number | None = None
    above: Number | None = None


class State(Message):
    """An NPC's state: the answer to ``npc.state`` (with its ``id``), or, without ``id``, a
    change that crossed a threshold the connection watches (``crossed``)."""

    type: Literal["state"] = "state"
    id: RequestId | None = None
    npc: StrictStr
    player: StrictStr | None = None
    mood: StrictStr
    intensity: Number
    relationship: dict[str, Number] | None = None
    #: what changed it: get, set, nudge, watch, unwatch, turn, judgement, event
    reason: StrictStr
    crossed: list[StateCrossing] | None = None
    #: ``watch``/``unwatch``: the names the connection watches for the pair now
    watching: list[StrictStr] | None = None


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
        State,
        Pong,
        Error,
        ReplyAudio,
        Transcript,
    )
}
