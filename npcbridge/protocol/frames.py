"""Builders of the server frames every part answers with: ``error`` and ``ok``.

The connection state machine, the pipeline and the message handlers all build these frames
here, so an ``error`` looks the same whoever sends it.
"""

from __future__ import annotations

from typing import Any

from .errors import ErrorCode, ProtocolError

#: the frames a ``stream: false`` request does not get (everything of its reply before
#: ``reply.end``; its emotes and actions are listed in ``reply.end``)
STREAM_FRAMES = frozenset({"reply.start", "reply.delta", "emote", "action"})


def error_frame(exc: ProtocolError) -> dict[str, Any]:
    """The ``error`` frame for a protocol error (``refused`` when it refuses a message)."""
    frame: dict[str, Any] = {
        **exc.fields,
        "type": "error",
        "code": str(exc.code),
        "message": exc.message,
        "retryable": bool(exc.retryable),
    }
    if exc.request_id is not None:
        frame["id"] = exc.request_id
    if exc.retry_after_ms is not None:
        frame["retry_after_ms"] = int(exc.retry_after_ms)
    if exc.refused is not None:
        frame["refused"] = exc.refused
    return frame


def internal_error(request_id: str | int | None) -> ProtocolError:
    """The ``internal`` error a client gets when the server (or a plugin) failed; the cause is
    logged, never sent."""
    return ProtocolError(ErrorCode.INTERNAL, "internal error", request_id=request_id)


def ok_frame(request_id: str | int | None, **fields: Any) -> dict[str, Any]:
    """The ``ok`` frame answering a request (with ``fields`` such as ``removed``)."""
    frame: dict[str, Any] = {"type": "ok", **fields}
    if request_id is not None:
        frame["id"] = request_id
    return frame
