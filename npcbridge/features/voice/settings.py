"""``[extra.voice]``: which speech models and voices, how replies are cut into spoken units,
and the limits of the player's speech."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VoiceSettings(BaseModel):
    """The voice feature's settings (docs/voice.md)."""

    model_config = ConfigDict(extra="forbid")

    #: offer voice at all (``voice`` / ``speech_in`` in ``welcome.features`` when they work)
    enabled: bool = True
    #: the text-to-speech model and voice a persona without its own gets
    tts_model: str = "canopylabs/orpheus-v1-english"
    default_voice: str = "troy"
    #: the model used when ``tts_model`` cannot be served (no key): espeak-ng offline
    offline_tts_model: str = "espeak-ng"
    #: the speech-to-text model (its catalog fallbacks follow it)
    stt_model: str = "whisper-large-v3-turbo"
    #: the language of the player's speech (ISO-639-1, e.g. "en"; None: detected)
    language: str | None = None
    #: the first spoken unit ends at the first clause break after this many words
    first_unit_words: int = Field(default=3, ge=1, le=20)
    #: no unit is longer than this (and than the model's ``max_input_chars``)
    max_unit_chars: int = Field(default=200, ge=20, le=4000)
    #: syntheses of one reply running at once
    concurrency: int = Field(default=3, ge=1, le=16)
    #: how long the end of a reply waits for its pending audio
    end_wait_s: float = Field(default=20.0, gt=0)
    #: most audio bytes in one ``reply.audio`` frame (a longer unit is split)
    max_frame_bytes: int = Field(default=48000, ge=960)
    #: the longest utterance transcribed, and its largest size
    max_speech_s: float = Field(default=30.0, gt=0)
    max_speech_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: a chunked utterance whose ``speech.end`` does not come within this is dropped
    speech_timeout_s: float = Field(default=60.0, gt=0)
