"""Frames waiting to go out on one connection.

One writer task sends in order. Deltas of the same reply that queue up behind a slow socket are
coalesced into one ``reply.delta`` (``seq`` is assigned when a frame is actually sent, so it
stays contiguous), which keeps the queue bounded by the number of replies in flight rather than
by the number of tokens. A send that does not complete within ``send_timeout_s`` closes the
connection: a client that stops reading cannot grow server memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from ..protocol import CloseCode, encode, encode_reply_delta

log = logging.getLogger("npcbridge.server")


class _PendingDelta:
    __slots__ = ("request_id", "parts")

    def __init__(self, request_id: str | int, text: str) -> None:
        self.request_id = request_id
        self.parts = [text]


class Outbox:
    """Ordered, coalescing, bounded sending for one connection."""

    def __init__(self, ws: Connection, send_timeout_s: float) -> None:
        self.ws = ws
        self.send_timeout_s = send_timeout_s
        self._queue: deque[_PendingDelta | dict[str, Any] | bytes] = deque()
        self._open: dict[str | int, _PendingDelta] = {}
        self._seq: dict[str | int, int] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self._task = asyncio.create_task(self._write(), name="npcbridge-outbox")
        self.coalesced = 0
        self._busy = False

    def emit(self, frame: dict[str, Any] | bytes) -> None:
        """Queue a frame (a message dict, or bytes already encoded). Never blocks."""
        if self._closed:
            return
        if isinstance(frame, dict):
            request_id = frame.get("id")
            if frame["type"] == "reply.delta" and request_id is not None:
                pending = self._open.get(request_id)
                if pending is not None:
                    pending.parts.append(frame["text"])
                    self.coalesced += 1
                    return
                pending = self._open[request_id] = _PendingDelta(request_id, frame["text"])
                self._queue.append(pending)
                self._wakeup.set()
                return
            if request_id is not None:
                # later deltas for this id must not jump ahead of this frame
                self._open.pop(request_id, None)
        self._queue.append(frame)
        self._wakeup.set()

    def _encode(self, item: _PendingDelta | dict[str, Any] | bytes) -> bytes:
        if isinstance(item, bytes):
            return item
        if isinstance(item, _PendingDelta):
            if self._open.get(item.request_id) is item:
                del self._open[item.request_id]
            seq = self._seq.get(item.request_id, 0)
            self._seq[item.request_id] = seq + 1
            return encode_reply_delta(item.request_id, seq, "".join(item.parts))
        if item["type"] == "reply.end":
            self._seq.pop(item["id"], None)
        return encode(item)

    async def _write(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    data = self._encode(self._queue.popleft())
                    self._busy = True
                    await asyncio.wait_for(self.ws.send(data), self.send_timeout_s)
                    self._busy = False
        except TimeoutError:
            log.warning("closing %s: client stopped reading", self.ws.remote_address)
            self._closed = True
            self._queue.clear()
            await self._close_slow_client()
        except ConnectionClosed:
            self._closed = True
            self._queue.clear()

    async def _close_slow_client(self) -> None:
        try:
            await asyncio.wait_for(
                self.ws.close(CloseCode.POLICY_VIOLATION, "client too slow"), 2.0
            )
        except (TimeoutError, ConnectionClosed):
            self.ws.transport.abort()

    async def drain(self, within_s: float = 2.0) -> None:
        """Wait until everything queued so far was sent (or the connection is gone)."""
        deadline = asyncio.get_running_loop().time() + within_s
        while (self._queue or self._busy or self._wakeup.is_set()) and not self._closed:
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        """Stop the writer."""
        self._closed = True
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass

    @property
    def pending(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)
