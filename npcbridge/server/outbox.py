"""Frames waiting to go out on one connection.

One writer task sends in order; the first delta of a reply is written at once when nothing is
queued (it decides the time to first token). Deltas of the same reply that queue up behind a
slow socket are coalesced into one ``reply.delta`` (``seq`` is assigned when a frame is
actually sent, so it stays contiguous), which keeps the number of queued frames bounded by the
replies in flight rather than by the number of tokens. Two limits protect the server from a
client that stops reading:

* ``send_timeout_s``: a send that does not complete in time closes the connection (1008);
* ``max_queue_bytes``: when the bytes held for the client exceed it, the connection is closed
  (1008) and the queue dropped at once.

The bytes counted are those of the encoded frames as they will go out: an encoded frame from
the moment it is queued until the socket took it (the frame being written counts until its send
completes), and a coalesced delta as the frame it will become (its text in UTF-8 plus the
frame's own bytes). A reply's text is held and counted once: when its ``reply.end`` is queued
while the reply's last coalesced delta still waits, that delta is sent from the ``reply.end``'s
text (which repeats it) and counts only its frame overhead. So a client that reads is closed
only if the replies it has in flight at one moment hold more than the bound unsent, and the
memory one connection can hold for sending is ``max_queue_bytes`` plus the WebSocket write
buffer (32 KiB).

The outbox works on any :class:`OutboxSocket`; the server's is
:class:`~.connection.BridgeConnection`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..protocol import CloseCode, encode, encode_reply_delta

log = logging.getLogger("npcbridge.server")

#: default bound on bytes queued for one connection (``server.send_queue_bytes``)
DEFAULT_QUEUE_BYTES = 1024 * 1024
#: a first delta skips the queue only while the socket's write buffer is below this
FAST_PATH_BUFFER_BYTES = 32 * 1024


class OutboxSocket(Protocol):
    """What the outbox needs of a WebSocket connection."""

    @property
    def remote_address(self) -> Any:
        """The peer's address (for the log)."""

    @property
    def state(self) -> State:
        """The WebSocket state (a first delta is written at once only while ``OPEN``)."""

    async def send(self, message: bytes) -> None:
        """Send one binary message, waiting while the write buffer is full."""

    async def close(self, code: int, reason: str) -> None:
        """Run the closing handshake."""

    def send_now(self, data: bytes) -> bool:
        """Write one binary message at once; False when that is not possible."""

    def write_buffer_size(self) -> int:
        """Bytes written and not yet taken by the network."""

    def abort(self) -> None:
        """Drop the connection at once."""


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (without encoding ASCII text, the common case)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _delta_overhead(request_id: str | int) -> int:
    """Bytes of a ``reply.delta`` frame besides its text (with the widest ``seq``)."""
    return len(encode_reply_delta(request_id, 0xFFFFFFFF, ""))


class _PendingDelta:
    """Deltas of one reply waiting to go out as one frame: their ``parts``, or (once the
    reply's ``reply.end`` is queued) the last ``tail`` characters of ``source``."""

    __slots__ = ("request_id", "parts", "size", "source", "tail")

    def __init__(self, request_id: str | int, text: str) -> None:
        self.request_id = request_id
        self.parts = [text]
        #: bytes counted for this frame in the outbox's ``queued_bytes``
        self.size = _delta_overhead(request_id) + utf8_size(text)
        self.source = ""
        self.tail = 0

    def text(self) -> str:
        """The text this frame carries."""
        if self.tail:
            return self.source[len(self.source) - self.tail :]
        return self.parts[0] if len(self.parts) == 1 else "".join(self.parts)

    def share(self, final_text: str) -> int:
        """Take the text from ``final_text`` (the reply's ``reply.end`` text, which ends with
        it) and drop the parts; return the bytes no longer counted, 0 when it cannot share."""
        if self.tail or not self.parts:
            return 0
        text = self.text()
        if not final_text.endswith(text):
            return 0
        chars = len(text)
        freed = self.size - _delta_overhead(self.request_id)
        self.source, self.tail, self.parts = final_text, chars, []
        self.size -= freed
        return freed


class _Frame:
    """An encoded frame; ``ends`` is the request id whose ``reply.end`` this is. The bytes
    counted for it are ``len(data)``."""

    __slots__ = ("data", "ends")

    def __init__(self, data: bytes, ends: str | int | None) -> None:
        self.data = data
        self.ends = ends


class Outbox:
    """Ordered, coalescing, bounded sending for one connection."""

    def __init__(
        self,
        ws: OutboxSocket,
        send_timeout_s: float,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.ws = ws
        self.send_timeout_s = send_timeout_s
        self.max_queue_bytes = max_queue_bytes
        self._queue: deque[_PendingDelta | _Frame] = deque()
        self._open: dict[str | int, _PendingDelta] = {}
        self._seq: dict[str | int, int] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        #: deltas merged into an earlier queued delta (not sent as frames of their own)
        self.coalesced = 0
        #: bytes held for this client: queued frames and the frame being sent (module docstring)
        self.queued_bytes = 0
        #: the most ``queued_bytes`` ever reached on this connection (for tests and tuning)
        self.peak_bytes = 0
        #: why the outbox stopped sending ("slow", "closed") or None while it works
        self.stopped: str | None = None
        self._busy = False
        self._closer: asyncio.Task[None] | None = None

    def _start(self) -> None:
        # the writer task is created on first use: an idle connection holds no extra task
        self._task = asyncio.create_task(self._write(), name="npcbridge-outbox")

    def emit(self, frame: dict[str, Any] | bytes) -> None:
        """Queue a frame (a message dict, or bytes already encoded). Never blocks."""
        if self._closed:
            return
        if self._task is None:
            self._start()
        if isinstance(frame, dict):
            request_id = frame.get("id")
            if frame["type"] == "reply.delta" and request_id is not None:
                text = frame["text"]
                if request_id not in self._seq and self._send_now(request_id, text):
                    return
                pending = self._open.get(request_id)
                if pending is not None:
                    size = utf8_size(text)
                    pending.parts.append(text)
                    pending.size += size
                    self.coalesced += 1
                else:
                    pending = self._open[request_id] = _PendingDelta(request_id, text)
                    self._queue.append(pending)
                    self._wakeup.set()
                    size = pending.size
                self._account(size)
                return
            freed = 0
            if request_id is not None:
                # later deltas for this id must not jump ahead of this frame
                pending = self._open.pop(request_id, None)
                if (
                    pending is not None
                    and frame["type"] == "reply.end"
                    and not frame.get("rewritten")
                ):
                    freed = pending.share(frame.get("text", ""))
            self.queued_bytes -= freed
            item = _Frame(encode(frame), request_id if frame["type"] == "reply.end" else None)
        else:
            item = _Frame(frame, None)
        self._queue.append(item)
        self._wakeup.set()
        self._account(len(item.data))

    def _send_now(self, request_id: str | int, text: str) -> bool:
        """Send a reply's first delta at once when nothing is queued or being sent (it decides
        the time to first token); later deltas go through the queue and coalesce."""
        ws = self.ws
        if (
            self._queue
            or self._busy
            or self._wakeup.is_set()
            or ws.state is not State.OPEN
            or ws.write_buffer_size() >= FAST_PATH_BUFFER_BYTES
        ):
            return False
        if not ws.send_now(encode_reply_delta(request_id, 0, text)):
            return False  # the connection is going away: the writer will find out
        self._seq[request_id] = 1
        return True

    def _account(self, size: int) -> None:
        self.queued_bytes += size
        if self.queued_bytes > self.peak_bytes:
            self.peak_bytes = self.queued_bytes
        if self.queued_bytes > self.max_queue_bytes and not self._closed:
            log.warning(
                "closing %s: more than %d bytes queued for a client that is not reading",
                self.ws.remote_address,
                self.max_queue_bytes,
            )
            self._stop("slow")
            self._closer = asyncio.get_running_loop().create_task(self._close_slow_client())

    def _stop(self, why: str) -> None:
        self._closed = True
        self.stopped = why
        self._queue.clear()
        self._open.clear()
        self._seq.clear()
        self.queued_bytes = 0

    def _encode(self, item: _PendingDelta | _Frame) -> tuple[bytes, int]:
        """The bytes to send for ``item`` and the count they were held under."""
        if isinstance(item, _Frame):
            if item.ends is not None:
                self._seq.pop(item.ends, None)
            return item.data, len(item.data)
        if self._open.get(item.request_id) is item:
            del self._open[item.request_id]
        seq = self._seq.get(item.request_id, 0)
        self._seq[item.request_id] = seq + 1
        return encode_reply_delta(item.request_id, seq, item.text()), item.size

    async def _write(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    data, counted = self._encode(self._queue.popleft())
                    self._busy = True
                    # a timeout scope, not wait_for: that wraps the send in a task of its own
                    async with asyncio.timeout(self.send_timeout_s):
                        await self.ws.send(data)
                    self._busy = False
                    # counted until the socket took it: a stuck send still holds its bytes
                    if not self._closed:
                        self.queued_bytes -= counted
        except TimeoutError:
            log.warning("closing %s: client stopped reading", self.ws.remote_address)
            self._stop("slow")
            await self._close_slow_client()
        except ConnectionClosed:
            self._stop("closed")

    async def _close_slow_client(self) -> None:
        try:
            await asyncio.wait_for(
                self.ws.close(CloseCode.POLICY_VIOLATION, "client too slow"), 2.0
            )
        except (TimeoutError, ConnectionClosed):
            pass
        finally:
            # a client that does not read will not read the close frame either
            self.ws.abort()

    async def drain(self, within_s: float = 2.0) -> None:
        """Wait until everything queued so far was sent (or the connection is gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while (self._queue or self._busy or self._wakeup.is_set()) and not self._closed:
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        """Stop the writer."""
        self._closed = True
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass

    @property
    def pending(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)
