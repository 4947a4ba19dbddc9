"""The messages a client sends (client -> server) and ``CLIENT_MESSAGES``, their registry by
``type``; a type starting with ``x.`` arrives as an :class:`Extension`, routed to plugins."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictBytes, StrictInt, StrictStr

from .fields import (
    Difficulty,
    JsonMap,
    Message,
    NpcId,
    Number,
    RequestId,
    SceneName,
    Urgency,
)
from .persona import Persona, StateChange
from .voice import AudioFormat, Channels, SampleRate, VoiceChoice


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


class SayOptions(Message):
    """How a turn is run: the optional fields ``say`` and the speech messages share."""

    context: JsonMap | None = None
    urgency: Urgency = "normal"
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=32768)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    stream: StrictBool = True
    #: true: speak with the persona's voice; false: no audio; a map overrides the persona's
    #: voice; absent: the persona's ``voice.always`` decides
    voice: VoiceChoice | None = None
    #: how this exchange moves the NPC's state once it completed (amounts; docs/state.md)
    effects: StateChange | None = None


class Say(SayOptions):
    """The player says something to an NPC; the reply streams back under the same id."""

    type: Literal["say"] = "say"
    id: RequestId
    npc: StrictStr = Field(min_length=1, max_length=128)
    player: StrictStr = Field(min_length=1, max_length=128)
    text: StrictStr


class Cancel(Message):
    """Stop the reply with this id at once."""

    type: Literal["cancel"] = "cancel"
    id: RequestId
    #: the player started speaking over the NPC: the reply ends with the text already voiced
    barge_in: StrictBool | None = None


class SpeechStart(SayOptions):
    """The player starts speaking to an NPC (push-to-talk); ``speech.chunk`` messages follow,
    then ``speech.end``. The server answers ``transcript``, then the reply as for a ``say``."""

    type: Literal["speech.start"] = "speech.start"
    id: RequestId
    npc: StrictStr = Field(min_length=1, max_length=128)
    player: StrictStr = Field(min_length=1, max_length=128)
    format: AudioFormat = "wav"
    sample_rate: SampleRate = 16000
    channels: Channels = 1


class Speech(SpeechStart):
    """A whole utterance in one message (bounded by ``max_message_bytes``)."""

    type: Literal["speech"] = "speech"  # type: ignore[assignment]
    audio: StrictBytes


class SpeechChunk(Message):
    """The next piece of a ``speech.start`` utterance's audio (``seq`` from 0)."""

    type: Literal["speech.chunk"] = "speech.chunk"
    id: RequestId
    seq: StrictInt = Field(ge=0)
    audio: StrictBytes


class SpeechEnd(Message):
    """The player stopped speaking: transcribe the utterance and answer it."""

    type: Literal["speech.end"] = "speech.end"
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


StateKey = Literal["trust", "affection", "familiarity", "intensity", "mood"]


class StateWatch(Message):
    """A threshold the game subscribes to: a ``state`` frame is sent when ``key``'s value
    enters or leaves the band (below ``below`` / above ``above``); ``mood`` fires on every
    change of mood."""

    key: StateKey
    below: Number | None = None
    above: Number | None = None
    #: the game's name for it, echoed in ``crossed`` (default: the key)
    name: StrictStr | None = Field(default=None, min_length=1, max_length=64)


class NpcState(Message):
    """Read or change an NPC's state (its mood, and its relationship to ``player``), or watch
    thresholds; answered with ``state``."""

    type: Literal["npc.state"] = "npc.state"
    id: RequestId
    op: Literal["get", "set", "nudge", "watch", "unwatch"] = "get"
    npc: NpcId
    player: NpcId | None = None
    #: ``set``: the new values; ``nudge``: amounts added
    values: StateChange | None = None
    #: ``watch``: thresholds to add; ``unwatch``: names to drop (absent: all of the pair)
    watch: list[StateWatch] | None = Field(default=None, max_length=16)
    names: list[StrictStr] | None = None


class WorldEvent(Message):
    """Tell NPCs what happened in the world: one NPC (``npc``), a list (``npcs``) or everyone
    in an open scene (``scene``). Remembered, moves their state, and with ``react`` the
    witnesses say a short line, streamed under ``<id>/<n>``; answered with ``ok``."""

    type: Literal["world.event"] = "world.event"
    id: RequestId
    text: StrictStr = Field(min_length=1, max_length=2000)
    importance: StrictInt = Field(default=5, ge=1, le=10)
    npc: NpcId | None = None
    npcs: list[NpcId] | None = Field(default=None, min_length=1, max_length=64)
    scene: SceneName | None = None
    #: the player the event is about (their relationship moves; their memory keeps it)
    player: NpcId | None = None
    #: the NPCs that saw it happen (default: every NPC told); the others heard of it
    witnesses: list[NpcId] | None = Field(default=None, max_length=64)
    #: how it moves a witness's state (a hearsay NPC gets half); absent: judged from the text
    effects: StateChange | None = None
    react: StrictBool = False
    context: JsonMap | None = None
    urgency: Urgency = "normal"


class Ping(Message):
    """Application-level liveness check."""

    type: Literal["ping"] = "ping"
    id: RequestId | None = None


class Extension(Message):
    """A message whose type starts with ``x.``; routed to plugins."""

    type: StrictStr
    id: RequestId | None = None


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
        NpcState,
        WorldEvent,
        Ping,
        Speech,
        SpeechStart,
        SpeechChunk,
        SpeechEnd,
    )
}

ClientMessage = Annotated[Message, "any message in CLIENT_MESSAGES or an Extension"]
