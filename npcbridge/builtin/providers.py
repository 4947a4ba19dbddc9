"""Registers the builtin providers: ``openai`` (Groq or any OpenAI-compatible URL), ``offline``;
and the speech providers: ``openai`` (the upstream's audio API, or ``upstream.audio_base_url``)
and ``espeak`` (the offline voice, when espeak-ng works)."""

from __future__ import annotations

from collections.abc import Callable

from ..gateway.catalog import ESPEAK_MODEL
from ..plugin.api import PluginAPI
from ..plugin.specs import hookimpl
from ..providers.espeak import EspeakProvider, espeak_works
from ..providers.offline import OfflineProvider
from ..providers.openai_audio import OpenAIAudioProvider
from ..providers.openai_compat import OpenAICompatProvider


@hookimpl
def npcbridge_register_providers(register: Callable[..., None], api: PluginAPI) -> None:
    """Register ``offline`` always, and ``openai`` when an API key is configured."""
    upstream = api.config.upstream
    register("offline", OfflineProvider(tokens_per_s=upstream.offline_tokens_per_s))
    if not upstream.use_offline():
        register(
            "openai",
            OpenAICompatProvider(
                base_url=upstream.base_url,
                api_key=upstream.api_key.get_secret_value() if upstream.api_key else "none",
                timeout_s=upstream.timeout_s,
                connect_timeout_s=upstream.connect_timeout_s,
                include_usage=upstream.include_usage,
            ),
        )


@hookimpl
def npcbridge_register_audio_providers(register: Callable[..., None], api: PluginAPI) -> None:
    """Register ``openai`` speech when a key or an audio URL is configured, and ``espeak``
    when the espeak-ng binary synthesises."""
    upstream = api.config.upstream
    key = upstream.audio_api_key or upstream.api_key
    if upstream.audio_base_url or not upstream.use_offline():
        register(
            "openai",
            OpenAIAudioProvider(
                base_url=upstream.audio_base_url or upstream.base_url,
                api_key=key.get_secret_value() if key else "none",
                timeout_s=upstream.timeout_s,
                connect_timeout_s=upstream.connect_timeout_s,
            ),
        )
    if espeak_works():
        register("espeak", EspeakProvider(), models=[ESPEAK_MODEL])
