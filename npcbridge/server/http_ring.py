"""The server messages of one HTTP session, numbered, kept until read (or until too many).

Every frame the session sends gets the next sequence number (0, 1, 2, ...). Readers (a
long-poll, an event stream, a ``POST`` answer) take the messages from a cursor on. A poll
acknowledges what lies before its cursor, which is then dropped; when the kept messages hold
more than ``max_bytes`` (``server.send_queue_bytes``), the oldest are dropped all the same and
a reader behind them finds its cursor expired.

``reply.delta`` frames get their per-reply ``seq`` here (as the WebSocket outbox assigns it when
it sends). A delta that arrives while the reply's previous delta is the newest message of that
reply and no reader has been handed it yet is merged into it, as the outbox coalesces deltas a
slow socket has not taken: a session nobody reads holds about one message per reply, not one
per token.
"""

from __future__ import annotations

import asyncio
from collections import deque
from itertools import islice
from typing import Any

from ..protocol import pack
from ..protocol.codec import with_protocol_floats
from .outbox import utf8_size

#: bytes counted for a ``reply.delta`` besides its text
DELTA_OVERHEAD = 40
#: messages that end a request (nothing more carries its id)
TERMINAL_TYPES = frozenset({"reply.end", "error"})


class MessageRing:
    """Numbered server messages of one session (module docstring)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: deque[tuple[int, dict[str, Any], int]] = deque()
        #: the sequence number of the oldest message kept
        self.first = 0
        #: the sequence number the next message gets (the session's cursor)
        self.next = 0
        #: messages before this one were handed to a reader (never merged into again)
        self.delivered = 0
        self.held_bytes = 0
        self._delta_seq: dict[str | int, int] = {}
        #: reply id -> the sequence number of its last delta while nothing of it came after
        self._open_delta: dict[str | int, int] = {}
        self._changed: asyncio.Future[None] | None = None
        self.closed = False

    # ---------------------------------------------------------------- writing

    def append(self, frame: dict[str, Any]) -> None:
        """Keep one server message (a copy: the sender may reuse its dict)."""
        if self.closed:
            return
        request_id = frame.get("id")
        mtype = frame.get("type")
        if mtype == "reply.delta" and request_id is not None:
            if self._merge_delta(request_id, frame["text"]):
                self._wake()
                return
            seq = self._delta_seq.get(request_id, 0)
            self._delta_seq[request_id] = seq + 1
            frame = {"type": "reply.delta", "id": request_id, "seq": seq, "text": frame["text"]}
            self._open_delta[request_id] = self.next
            size = DELTA_OVERHEAD + utf8_size(frame["text"])
        else:
            # the protocol floats as floats, as the WebSocket encoding writes them
            frame = dict(with_protocol_floats(frame))
            if request_id is not None:
                self._open_delta.pop(request_id, None)
                if mtype in TERMINAL_TYPES:
                    self._delta_seq.pop(request_id, None)
            size = len(pack(frame))
        self._entries.append((self.next, frame, size))
        self.next += 1
        self.held_bytes += size
        while self.held_bytes > self.max_bytes and len(self._entries) > 1:
            self._drop_oldest()
        self._wake()

    def _merge_delta(self, request_id: str | int, text: str) -> bool:
        seq = self._open_delta.get(request_id)
        if seq is None or seq < self.delivered or seq < self.first:
            return False
        index = seq - self.first
        _, frame, size = self._entries[index]
        added = utf8_size(text)
        merged = {**frame, "text": frame["text"] + text}
        self._entries[index] = (seq, merged, size + added)
        self.held_bytes += added
        while self.held_bytes > self.max_bytes and len(self._entries) > 1:
            self._drop_oldest()
        return True

    def _drop_oldest(self) -> None:
        seq, _, size = self._entries.popleft()
        self.held_bytes -= size
        self.first = seq + 1

    def acknowledge(self, cursor: int) -> None:
        """The reader has everything before ``cursor``: drop it."""
        while self._entries and self._entries[0][0] < cursor:
            self._drop_oldest()
        self.first = max(self.first, min(cursor, self.next))

    def close(self) -> None:
        """The session ended: wake every reader; nothing more is kept."""
        self.closed = True
        self._wake()

    # ---------------------------------------------------------------- reading

    def since(self, cursor: int, deliver: bool = True) -> list[tuple[int, dict[str, Any]]]:
        """The kept messages with a sequence number >= ``cursor``; ``deliver``: they are handed
        to a reader (no later delta is merged into them)."""
        start = max(cursor, self.first) - self.first
        found = [(seq, frame) for seq, frame, _ in islice(self._entries, start, None)]
        if found and deliver:
            self.delivered = max(self.delivered, found[-1][0] + 1)
        return found

    def changed(self) -> asyncio.Future[None]:
        """A future done when the next message is kept (or the session ends)."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)


def merge_deltas(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with each reply's consecutive ``reply.delta`` merged into one (at the first
    one's place, with its ``seq``); messages of other replies in between do not separate them."""
    merged: list[dict[str, Any]] = []
    open_delta: dict[Any, int] = {}
    for frame in messages:
        request_id = frame.get("id")
        if frame.get("type") == "reply.delta" and request_id is not None:
            index = open_delta.get(request_id)
            if index is not None:
                merged[index] = {**merged[index], "text": merged[index]["text"] + frame["text"]}
                continue
            open_delta[request_id] = len(merged)
        elif request_id is not None:
            open_delta.pop(request_id, None)
        merged.append(frame)
    return merged
