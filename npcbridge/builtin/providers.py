"""Registers the builtin providers: ``openai`` (Groq or any OpenAI-compatible URL), ``offline``."""

from __future__ import annotations

from collections.abc import Callable

from ..plugin.api import PluginAPI
from ..plugin.specs import hookimpl
from ..providers.offline import OfflineProvider
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
