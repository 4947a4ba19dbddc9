"""The exception every client call raises for an ``error`` (or a connection lost under it)."""

from __future__ import annotations

from typing import Any


class NpcBridgeError(Exception):
    """An ``error`` from the server (or the connection closing under a request)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after_ms: int | None = None,
        frame: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.frame = frame or {}

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> NpcBridgeError:
        """Build from an ``error`` frame."""
        return cls(
            str(frame.get("code", "internal")),
            str(frame.get("message", "")),
            retryable=bool(frame.get("retryable", False)),
            retry_after_ms=frame.get("retry_after_ms"),
            frame=frame,
        )
