"""The provider interface: one streamed chat completion, as a sequence of events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..turn import Usage


@dataclass
class ProviderRequest:
    """What a provider is asked to complete."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    #: any further OpenAI-style parameters (unsupported ones are dropped by the provider)
    params: dict[str, Any] = field(default_factory=dict)
    #: a hint the offline provider uses to stay in character
    persona_name: str | None = None


@dataclass
class TextDelta:
    """A piece of reply text."""

    text: str


@dataclass
class ToolCallDelta:
    """A piece of a tool call; ``arguments`` fragments concatenate per ``index``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class StreamDone:
    """The stream ended normally."""

    finish: str
    usage: Usage | None = None
    headers: dict[str, str] = field(default_factory=dict)


StreamEvent = TextDelta | ToolCallDelta | StreamDone


class UpstreamError(Exception):
    """The upstream failed. ``status`` is the HTTP status (None for connection errors)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        timeout: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
        self.timeout = timeout
        self.headers = headers or {}

    @property
    def retryable(self) -> bool:
        """Statuses worth retrying: 429, 5xx gateway errors, timeouts, connection failures."""
        return self.timeout or self.status in (None, 429, 498, 500, 502, 503, 504, 524)


class Provider(Protocol):
    """An upstream that streams chat completions."""

    name: str

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        """Stream one completion. Closing the iterator early must close the upstream request.

        Raises :class:`UpstreamError` for failures (before or during the stream).
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
