"""Upstream LLM backends: an OpenAI-compatible one (Groq by default) and an offline one."""

from .base import (
    Provider,
    ProviderRequest,
    Reason,
    StreamDone,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
)

__all__ = [
    "Provider",
    "ProviderRequest",
    "Reason",
    "StreamDone",
    "TextDelta",
    "ToolCallDelta",
    "UpstreamError",
]
