"""The provider interface: one streamed chat completion, as a sequence of events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ..pipeline.turn import Usage


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
    #: what the turn is (``say``, ``bark``, ``scene``, ``summary``...): a hint for the offline
    #: provider, which answers each kind with fitting canned content
    kind: str = "say"


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


class Reason(StrEnum):
    """Why an upstream request failed: the fixed vocabulary of what a client is told."""

    STATUS = "status"  # an HTTP error status
    TIMEOUT = "timeout"  # no answer (or no first token) in time
    DEADLINE = "deadline"  # the turn's total deadline passed
    CONNECT = "connect"  # the upstream could not be reached
    CUT = "cut"  # the stream broke off before its end
    STREAM_ERROR = "stream_error"  # the upstream reported an error inside the stream
    BAD_RESPONSE = "bad_response"  # a 200 whose body is not a completion stream
    UNAVAILABLE = "unavailable"  # no model of the turn could be tried
    BREAKER_OPEN = "breaker_open"  # every model of the turn is paused by its circuit breaker
    FAILED = "failed"  # anything else a provider reports


#: what a client is told for each reason (``{status}`` is the HTTP status, a number)
PUBLIC_TEXT: dict[Reason, str] = {
    Reason.STATUS: "the upstream answered HTTP {status}",
    Reason.TIMEOUT: "the upstream did not answer in time",
    Reason.DEADLINE: "the reply did not finish within the turn deadline",
    Reason.CONNECT: "could not reach the upstream",
    Reason.CUT: "the upstream's stream broke off",
    Reason.STREAM_ERROR: "the upstream reported an error in the stream",
    Reason.BAD_RESPONSE: "the upstream's answer was not a completion stream",
    Reason.UNAVAILABLE: "no model could serve this turn",
    Reason.BREAKER_OPEN: "every model for this turn is paused after repeated failures; retry later",
    Reason.FAILED: "the upstream failed",
}


class UpstreamError(Exception):
    """The upstream failed. ``status`` is the HTTP status (None for connection errors).

    ``message`` (``str(exc)``) is for logs only and may be anything a provider wrote; what a
    client is told is :attr:`public_message`, built from ``reason`` and ``status`` alone, so no
    upstream text (which may echo the request's headers, API key included) reaches a client.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        timeout: bool = False,
        headers: dict[str, str] | None = None,
        reason: Reason | None = None,
        cause: UpstreamError | None = None,
    ) -> None:
        if reason is None:
            if timeout:
                reason = Reason.TIMEOUT
            elif status is not None:
                reason = Reason.STATUS
            else:
                reason = Reason.FAILED
        self.status = status
        self.retry_after_s = retry_after_s
        self.timeout = timeout
        self.headers = headers or {}
        self.reason = reason
        #: the failure behind this one (what opened the breakers), told to the client first
        self.cause = cause
        super().__init__(message or self.public_message)

    @property
    def public_message(self) -> str:
        """What a client may be told: our own words for the reason, and the HTTP status."""
        if self.reason is Reason.STATUS and self.status is None:
            text = PUBLIC_TEXT[Reason.FAILED]
        else:
            text = PUBLIC_TEXT[self.reason].format(status=int(self.status or 0))
        return text if self.cause is None else f"{self.cause.public_message}; {text}"

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
