"""Upstream failures in the protocol's words: the one place where the gateway turns what went
wrong upstream into an error code, and picks the error that ends a turn no model could serve."""

from __future__ import annotations

from ..protocol.errors import ErrorCode, ProtocolError
from ..providers.base import Reason, UpstreamError
from .ratelimit import RateLimitWait


def upstream_protocol_error(exc: UpstreamError, request_id: str | int | None) -> ProtocolError:
    """Map an upstream failure onto the protocol's error codes. The message is our own words
    (:attr:`UpstreamError.public_message`), never the upstream's text."""
    retry_ms = int(exc.retry_after_s * 1000) if exc.retry_after_s is not None else None
    if exc.status == 429:
        return ProtocolError(
            ErrorCode.RATE_LIMITED,
            "the upstream rate limit was reached; retry later",
            request_id=request_id,
            retryable=True,
            retry_after_ms=retry_ms,
        )
    if exc.timeout:
        return ProtocolError(ErrorCode.UPSTREAM_TIMEOUT, exc.public_message, request_id=request_id)
    return ProtocolError(
        ErrorCode.UPSTREAM_ERROR,
        exc.public_message,
        request_id=request_id,
        retryable=exc.retryable,
        retry_after_ms=retry_ms,
    )


class BreakerOpen(Exception):
    """A model was skipped because its circuit breaker is open; ``cause`` is the upstream
    failure behind it (this turn's own, else the one that opened the breaker)."""

    def __init__(self, model: str, retry_after: float, cause: Exception | None) -> None:
        super().__init__(f"circuit breaker of {model} is open")
        self.retry_after = retry_after
        self.cause = cause if isinstance(cause, UpstreamError) else None


def final_error(last: BaseException | None, request_id: str | int | None) -> Exception:
    """The error that ends a turn no model could serve, from the last model's failure."""
    if isinstance(last, RateLimitWait):
        return ProtocolError(
            ErrorCode.RATE_LIMITED,
            "the upstream rate limit leaves no room within this turn's latency budget",
            request_id=request_id,
            retryable=True,
            retry_after_ms=max(1, int(last.wait_s * 1000)),
        )
    if isinstance(last, BreakerOpen):
        return UpstreamError(
            status=503,
            retry_after_s=max(0.001, last.retry_after),
            reason=Reason.BREAKER_OPEN,
            cause=last.cause,
        )
    if isinstance(last, UpstreamError):
        return last
    return UpstreamError(status=503, reason=Reason.UNAVAILABLE)


def failure_label(exc: UpstreamError) -> str:
    """The metrics label of an upstream failure (timeout, bad_response, connection, the status)."""
    if exc.timeout:
        return "timeout"
    if exc.reason is Reason.BAD_RESPONSE:
        return "bad_response"
    if exc.status is None:
        return "connection"
    return str(exc.status)
