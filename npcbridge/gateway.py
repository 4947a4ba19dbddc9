"""The gateway between the pipeline and the providers.

It turns "stream this turn on that model" into provider calls, and is the one place where
upstream failures are classified into protocol errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .models import ModelEntry
from .protocol.errors import ErrorCode, ProtocolError
from .providers.base import ProviderRequest, StreamEvent, TextDelta, ToolCallDelta, UpstreamError

if TYPE_CHECKING:
    from .app import App
    from .turn import Turn


def upstream_protocol_error(exc: UpstreamError, request_id: str | int | None) -> ProtocolError:
    """Map an upstream failure onto the protocol's error codes."""
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
        return ProtocolError(
            ErrorCode.UPSTREAM_TIMEOUT, "the upstream did not answer in time", request_id=request_id
        )
    return ProtocolError(
        ErrorCode.UPSTREAM_ERROR,
        str(exc),
        request_id=request_id,
        retryable=exc.retryable,
        retry_after_ms=retry_ms,
    )


class Gateway:
    """Streams a turn from the provider that serves its model."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def stream(
        self, turn: Turn, model: ModelEntry, request: ProviderRequest
    ) -> AsyncIterator[StreamEvent]:
        """Yield the provider's events; the first one must arrive within the first-token timeout."""
        provider = self.app.provider_for(model)
        first_timeout = self.app.config.upstream.first_token_timeout_s
        events = provider.stream(request).__aiter__()
        try:
            first = True
            while True:
                try:
                    if first:
                        event = await asyncio.wait_for(events.__anext__(), first_timeout)
                    else:
                        event = await events.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise UpstreamError("no first token in time", timeout=True) from None
                if first and isinstance(event, (TextDelta, ToolCallDelta)):
                    first = False
                yield event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
