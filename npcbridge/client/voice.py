"""Voice for the Python client: audio frames of a reply, and the player's speech sent in.

``reply = await client.say_audio("smith", "p1", "Hello!")`` asks for a voiced reply;
``async for frame in reply.audio()`` gives each :class:`AudioFrame` in order (PCM16 and the
mouth envelope). ``await client.speech(npc, player, wav_bytes)`` sends a whole utterance;
``upload = await client.start_speech(npc, player)``, ``await upload.send(chunk)`` and
``reply = await upload.end()`` send one while the player holds push-to-talk. Either answers a
:class:`~npcbridge.client.streams.Reply` whose ``transcript`` is what the server heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .routing import RequestId
    from .streams import Reply


@dataclass(frozen=True)
class AudioFrame:
    """One ``reply.audio`` frame: ``pcm`` is little-endian signed 16-bit audio."""

    seq: int
    text: str
    pcm: bytes
    sample_rate: int
    channels: int
    duration_ms: int
    #: mouth openness 0..255 per 1/``mouth_hz`` s
    mouth: bytes
    mouth_hz: int

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> AudioFrame:
        """The frame as received."""
        return cls(
            seq=int(frame["seq"]),
            text=str(frame.get("text", "")),
            pcm=bytes(frame["audio"]),
            sample_rate=int(frame["sample_rate"]),
            channels=int(frame.get("channels", 1)),
            duration_ms=int(frame["duration_ms"]),
            mouth=bytes(frame.get("mouth", b"")),
            mouth_hz=int(frame.get("mouth_hz", 50)),
        )

    def openness(self) -> list[float]:
        """The mouth envelope as floats 0..1."""
        return [value / 255 for value in self.mouth]


class _Starter(Protocol):
    def next_id(self) -> int: ...

    async def send(self, frame: dict[str, Any]) -> None: ...

    async def _start_reply(self, frame: dict[str, Any]) -> Reply: ...


class SpeechUpload:
    """An utterance being sent in chunks (``speech.start`` went out already)."""

    def __init__(self, client: _Starter, reply: Reply) -> None:
        self.client = client
        self.reply = reply
        self.seq = 0

    @property
    def id(self) -> RequestId:
        """The request id the utterance and its reply share."""
        return self.reply.id

    async def send(self, audio: bytes) -> None:
        """Send the next bytes of the utterance (``speech.chunk``)."""
        await self.client.send(
            {"type": "speech.chunk", "id": self.reply.id, "seq": self.seq, "audio": audio}
        )
        self.seq += 1

    async def end(self) -> Reply:
        """The player stopped speaking (``speech.end``); the reply follows its transcript."""
        await self.client.send({"type": "speech.end", "id": self.reply.id})
        return self.reply


class VoiceRequests:
    """The voice requests of :class:`~npcbridge.client.Client` (a mixin)."""

    async def say_audio(
        self: _Starter, npc: str, player: str, text: str, voice: Any = True, **options: Any
    ) -> Reply:
        """A ``say`` that asks for audio (``voice``: true, or a ``{name, model, speed}`` map);
        iterate ``reply.audio()`` for its frames."""
        frame = {"type": "say", "npc": npc, "player": player, "text": text, "voice": voice}
        return await self._start_reply({**frame, **options})

    async def speech(
        self: _Starter,
        npc: str,
        player: str,
        audio: bytes,
        *,
        format: str = "wav",
        sample_rate: int = 16000,
        channels: int = 1,
        **options: Any,
    ) -> Reply:
        """Send a whole utterance (``speech``); the reply follows its ``transcript``."""
        frame: dict[str, Any] = {"type": "speech", "npc": npc, "player": player, "audio": audio}
        frame |= {"format": format, "sample_rate": sample_rate, "channels": channels}
        return await self._start_reply({**frame, **options})

    async def start_speech(
        self: _Starter,
        npc: str,
        player: str,
        *,
        format: str = "wav",
        sample_rate: int = 16000,
        channels: int = 1,
        **options: Any,
    ) -> SpeechUpload:
        """Begin an utterance sent in chunks (``speech.start``)."""
        frame: dict[str, Any] = {"type": "speech.start", "npc": npc, "player": player}
        frame["format"] = format
        frame |= {"sample_rate": sample_rate, "channels": channels}
        reply = await self._start_reply({**frame, **options})
        return SpeechUpload(self, reply)
