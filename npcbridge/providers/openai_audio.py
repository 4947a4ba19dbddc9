"""Speech through any OpenAI-compatible audio API with the official ``openai`` SDK: Groq by
default (``audio.speech`` for text to speech, ``audio.transcriptions`` for speech to text), or
a local Whisper/TTS server by base URL."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import openai

from ..process import add_secret
from .audio import SpeechRequest, TranscriptionRequest
from .base import Reason, UpstreamError
from .openai_compat import lower_keys, status_failure

T = TypeVar("T")


def sdk_client(
    base_url: str, api_key: str, timeout_s: float, connect_timeout_s: float
) -> openai.AsyncOpenAI:
    """The ``openai`` SDK client of one provider: the key registered as a secret (never
    logged, whoever echoes it: :mod:`npcbridge.process`), the timeouts, and no retries of its
    own (they belong to the gateway, which knows the turn's latency budget)."""
    add_secret(api_key)
    timeout = openai.Timeout(timeout_s, connect=connect_timeout_s)
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


def sdk_failure(exc: openai.APIStatusError | openai.APIConnectionError) -> UpstreamError:
    """The SDK's failure to get an answer as :class:`UpstreamError` in our own words
    (:func:`~.openai_compat.status_failure` for an HTTP error status)."""
    if isinstance(exc, openai.APIStatusError):
        headers = lower_keys(exc.response.headers)
        return status_failure(exc.status_code, headers, exc.message or "")
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamError(timeout=True)
    return UpstreamError(reason=Reason.CONNECT)


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
        self.client = sdk_client(base_url, api_key, timeout_s, connect_timeout_s)

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
    """``call``'s answer; the SDK's failures as :func:`sdk_failure` words them."""
    try:
        return await call
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        raise sdk_failure(exc) from None
