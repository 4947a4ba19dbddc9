"""The speech provider interface: one synthesis (text to a WAV file) or one transcription (a WAV
file to text). A provider serves the speech models registered with it
(``npcbridge_register_audio_providers``); it raises
:class:`~npcbridge.providers.base.UpstreamError` for failures, as a chat provider does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SpeechRequest:
    """Text to synthesise."""

    model: str
    voice: str
    text: str
    speed: float | None = None


@dataclass(frozen=True)
class TranscriptionRequest:
    """A WAV file (PCM16) to transcribe."""

    model: str
    wav: bytes
    language: str | None = None


class AudioProvider(Protocol):
    """An upstream that speaks and/or listens."""

    name: str

    async def speech(self, request: SpeechRequest) -> bytes:
        """Synthesise ``request.text``; return a WAV file of 16-bit PCM."""
        ...

    async def transcribe(self, request: TranscriptionRequest) -> str:
        """Transcribe ``request.wav``; return the text."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
