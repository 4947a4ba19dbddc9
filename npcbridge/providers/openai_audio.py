"""Speech through any OpenAI-compatible audio API with the official ``openai`` SDK: Groq by
default (``audio.speech`` for text to speech, ``audio.transcriptions`` for speech to text), or
a local Whisper/TTS server by base URL."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import openai

from .audio import SpeechRequest, TranscriptionRequest
from .openai_compat import sdk_client, sdk_failure

T = TypeVar("T")


class OpenAIAudioProvider:
    """``/audio/speech`` and ``/audio/transcriptions`` of one OpenAI-compatible server."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        name: str = "openai",
    ) -> None:
        self.name = name
        self.client = sdk_client(base_url, api_key, timeout_s, connect_timeout_s, aiohttp=False)

    async def speech(self, request: SpeechRequest) -> bytes:
        """One synthesis as WAV."""
        options: dict[str, Any] = {}
        if request.speed is not None:
            options["speed"] = request.speed
        answer = await _calling(
            self.client.audio.speech.create(
                model=request.model,
                voice=request.voice,
                input=request.text,
                response_format="wav",
                **options,
            )
        )
        return bytes(answer.content)

    async def transcribe(self, request: TranscriptionRequest) -> str:
        """One transcription of a WAV file."""
        options: dict[str, Any] = {}
        if request.language:
            options["language"] = request.language
        answer = await _calling(
            self.client.audio.transcriptions.create(
                model=request.model,
                file=("speech.wav", request.wav, "audio/wav"),
                response_format="json",
                **options,
            )
        )
        return str(getattr(answer, "text", "") or "")

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        await self.client.close()


async def _calling(call: Awaitable[T]) -> T:
    """``call``'s answer; the SDK's failures as :func:`~.openai_compat.sdk_failure` words them."""
    try:
        return await call
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        raise sdk_failure(exc) from None
