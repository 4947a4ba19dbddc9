"""The voice parts of the protocol: an NPC's voice (persona ``voice``, ``say.voice``), the audio
frames of a reply (``reply.audio``), what ``reply.end.voice`` reports, and ``transcript``, the
server's answer to the player's speech (``speech``, ``speech.start`` / ``speech.chunk`` /
``speech.end``, in :mod:`~npcbridge.protocol.client_messages`).

Audio travels as msgpack ``bin``: little-endian signed 16-bit PCM out, WAV or PCM16 in.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictBytes, StrictInt, StrictStr

from .fields import Message, Number, RequestId

#: the audio formats a client may send (``wav``: a RIFF/WAVE file of PCM16; ``pcm16``: raw
#: little-endian signed 16-bit samples at the declared ``sample_rate`` and ``channels``)
AudioFormat = Literal["wav", "pcm16"]
VoiceName = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Speed = Annotated[Number, Field(ge=0.25, le=4.0)]
SampleRate = Annotated[StrictInt, Field(ge=8000, le=48000)]
Channels = Annotated[StrictInt, Field(ge=1, le=2)]


class VoiceSpec(Message):
    """An NPC's voice (persona ``voice``): who speaks, through which TTS model, how fast, and
    whether every reply is spoken (``always``) or only the ``say`` that asks for voice."""

    name: VoiceName
    model: StrictStr | None = Field(default=None, min_length=1, max_length=128)
    speed: Speed | None = None
    always: StrictBool | None = None


class VoiceOverride(Message):
    """``say.voice`` as a map: these fields replace the persona's for one reply."""

    name: VoiceName | None = None
    model: StrictStr | None = Field(default=None, min_length=1, max_length=128)
    speed: Speed | None = None


#: ``say.voice``: true (the persona's voice), false (no audio) or an override map
VoiceChoice = StrictBool | VoiceOverride


class ReplyAudio(Message):
    """The audio of one spoken unit of a reply (or a part of it), in order (``seq`` from 0)."""

    type: Literal["reply.audio"] = "reply.audio"
    id: RequestId
    npc: StrictStr
    seq: StrictInt
    #: the unit's text (on its first frame; "" on the frames that continue a long unit)
    text: StrictStr
    format: Literal["pcm16"] = "pcm16"
    sample_rate: StrictInt
    channels: StrictInt = 1
    audio: StrictBytes
    duration_ms: StrictInt
    #: mouth openness, one byte (0..255 for 0..1) per 1/``mouth_hz`` s of audio
    mouth: StrictBytes
    mouth_hz: StrictInt = 50


class VoiceReport(Message):
    """``reply.end.voice``: how the reply was spoken."""

    #: milliseconds from the request to the first ``reply.audio`` frame (0: no audio was sent)
    ttfa_ms: Number = 0
    audio_ms: StrictInt = 0
    chars: StrictInt = 0
    cost_usd: Number = 0
    #: set when speech failed (the text reply is intact): an error code such as
    #: ``upstream_error``, ``upstream_timeout``, ``rate_limited``, ``budget_exceeded``
    error: StrictStr | None = None


class Transcript(Message):
    """What the player said, as transcribed; the reply follows under the same id."""

    type: Literal["transcript"] = "transcript"
    id: RequestId
    npc: StrictStr
    text: StrictStr
