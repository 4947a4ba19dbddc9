"""One client session over plain HTTP: the same pump as a WebSocket connection, read by polls.

An :class:`HttpSession` is a :class:`~.session_core.SessionCore` like the WebSocket
:class:`~.session.Session`: the same connection rules, handlers, turns and plugins. What
differs is only where frames go: into the session's :class:`~.http_ring.MessageRing`, from which
``POST`` answers, long-polls and event streams read. The session lives until the client ends it,
the rules close it (too many bad messages), or it stays idle for ``server.http_session_idle_s``
with no request, poll or stream open; its turns are then cancelled.

The session's secret :attr:`~HttpSession.key` (128 random bits, after the worker's number and a
dot when the server runs as several workers: :mod:`.http_forward`) is what requests carry in
their path; :attr:`~HttpSession.id` (the ``welcome.session``, logged) is another value.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol import CloseCode, ErrorCode, ProtocolError
from ..protocol.codec import request_id_of
from ..protocol.connection import Decoder, Phase
from ..protocol.routing import RequestId, Router
from .http_connection import Gone
from .http_ring import MessageRing, merge_deltas
from .session_core import SessionCore

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("npcbridge.server")


class CursorError(ProtocolError):
    """A poll's cursor is not in the session: expired (410) or ahead of it (400)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(ErrorCode.BAD_REQUEST, message)
        self.status = status


@dataclass
class Outcome:
    """What a ``POST`` of one message got: its messages, and whether it was refused at once."""

    cursor: int
    messages: list[dict[str, Any]]
    #: the error refusing the message at once (the answer's body then), or None
    refusal: dict[str, Any] | None = None


class RequestFrames:
    """The session's frames that belong to one posted request, chosen by the clients' routing
    rule (:class:`~npcbridge.protocol.routing.Router` with only that request open): its own,
    and those of the replies it opens (a ``scene.say``'s replies, a ``world.event``'s
    reactions), up to the frame that ends it. A message without id gets the frames without
    id (a ``pong``, an error that could read no id)."""

    def __init__(self, request_id: RequestId | None, sent: str, start: int) -> None:
        self.request_id = request_id
        self._router = Router()
        if request_id is not None:
            self._router.open(request_id, sent)
        #: the sequence numbers of the request's frames
        self.seqs: set[int] = set()
        #: the sequence number of the next frame to route
        self.fed = start
        #: True once the frame ending the request was routed
        self.ended = False

    def feed(self, found: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Route the kept frames in ``found`` (sequence number, frame) not routed yet."""
        for seq, frame in found:
            if seq < self.fed:
                continue
            self.fed = seq + 1
            if self.request_id is None:
                if frame.get("id") is None:
                    self.seqs.add(seq)
                continue
            routed = self._router.feed(frame)
            if routed.request is not None:
                self.seqs.add(seq)
            if routed.ended is not None and routed.request == self.request_id:
                self.ended = True


class HttpSession(SessionCore):
    """State of one HTTP session (module docstring)."""

    def __init__(self, context: ServerContext, peer: str, key_prefix: str = "") -> None:
        """``key_prefix`` names the worker of the session (``npcbridge serve --workers N``)."""
        super().__init__(context)
        #: the secret the client's requests carry (``/v1/sessions/<key>/...``)
        self.key = key_prefix + secrets.token_urlsafe(16)
        self.peer = peer
        self.ring = MessageRing(self.config.send_queue_bytes)
        #: True once the session is over (its key is then unknown)
        self.ended = False
        #: requests, polls and streams of this session in progress (it is not idle meanwhile)
        self.holders = 0
        #: loop time of the last request's end
        self.last_seen = self.loop.time()

    def send(self, frame: dict[str, Any]) -> None:
        """Keep a frame for the client's next read."""
        self.ring.append(frame)

    async def _close(self, code: CloseCode, reason: str) -> None:
        # the rules ended the session (too many bad messages): the transport drops it
        self.ended = True
        log.info("http session=%s closed by the server: %s", self.id, reason)

    async def end(self) -> None:
        """End the session: its turns and handlers are cancelled, its readers woken."""
        self.ended = True
        self.ring.close()
        await self._cancel_tasks()

    def idle_since(self) -> float | None:
        """Loop time since which nothing of this session runs, or None while something does."""
        return None if self.holders else self.last_seen

    # ---------------------------------------------------------------- hello

    def hello(self, body: bytes, decode: Decoder) -> dict[str, Any]:
        """Feed the ``hello``; the ``welcome`` when it opened the session, else the error."""
        self.machine.receive_data(body, self.loop.time(), decode)
        frames = self.machine.frames_to_send()
        self.machine.events_received()  # Opened, or the Close after a refusal
        if self.machine.phase is not Phase.OPEN:
            self.ended = True
        log.info(
            "http session=%s peer=%s client=%r %s",
            self.id,
            self.peer,
            self.client,
            "open" if not self.ended else "refused",
        )
        return frames[0]

    # ---------------------------------------------------------------- messages

    async def receive(self, body: bytes, decode: Decoder, wait_s: float, gone: Gone) -> Outcome:
        """Feed one client message; answer with its messages, after waiting up to ``wait_s``
        for the request to finish."""
        seen: list[dict[str, Any]] = []
        in_flight = dict(self.machine.in_flight)

        def decode_and_keep(data: bytes) -> dict[str, Any]:
            raw = decode(data)
            seen.append(raw)
            return raw

        ring = self.ring
        start = ring.next
        self._starting = []
        try:
            self.machine.receive_data(body, self.loop.time(), decode_and_keep)
            await self._pump()
        finally:
            tasks, self._starting = self._starting, None
        request_id = request_id_of(seen[0]) if seen else None
        sync_end = ring.next
        sync = [frame for seq, frame in ring.since(start, deliver=False) if seq < sync_end]
        # every error the rules answer at once refuses the message (an undecodable one has no
        # type to name in ``refused``)
        refusal = next((f for f in sync if f.get("type") == "error"), None)
        # a message that continues or cancels a request in flight (``speech.end``, ``cancel``)
        # waits for that request, as it was sent
        sent = str(seen[0].get("type")) if seen else ""
        if request_id is not None:
            sent = in_flight.get(request_id, sent)
        frames = RequestFrames(request_id, sent, start)
        if refusal is None and wait_s > 0:
            await self._settle(frames, tasks, wait_s, gone)
        found = ring.since(start)
        frames.feed(found)
        messages = [frame for seq, frame in found if seq in frames.seqs]
        if refusal is None and request_id is not None:
            # a handler may refuse its message later (``refused``: it was not accepted)
            refusal = next(
                (
                    f
                    for f in messages
                    if f.get("type") == "error" and "refused" in f and f.get("id") == request_id
                ),
                None,
            )
        return Outcome(ring.next, messages, refusal)

    async def _settle(
        self,
        frames: RequestFrames,
        tasks: list[asyncio.Task[None]],
        wait_s: float,
        gone: Gone,
    ) -> None:
        """Wait until the request finished (the frame ending it by the routing rule, or its
        tasks done and its id no longer in flight), the wait ran out, the session ended or the
        client went away."""

        def finished() -> bool:
            frames.feed(self.ring.since(frames.fed, deliver=False))
            if frames.ended:
                return True
            in_flight = frames.request_id in self.machine.in_flight
            return all(t.done() for t in tasks) and not in_flight

        await self._hold(finished, [t for t in tasks if not t.done()], wait_s, gone)

    async def _hold(
        self,
        ready: Callable[[], bool],
        tasks: Iterable[asyncio.Future[Any]],
        wait_s: float,
        gone: Gone,
    ) -> None:
        """Wait until ``ready()`` (checked whenever a message is kept or one of ``tasks``
        ends), ``wait_s`` passed, the session ended or the client went away."""
        deadline = self.loop.time() + wait_s
        while not ready() and not self.ended and not gone.done():
            left = deadline - self.loop.time()
            if left <= 0:
                return
            pending: list[asyncio.Future[Any]] = [self.ring.changed(), gone]
            pending += [t for t in tasks if not t.done()]
            await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)

    # ---------------------------------------------------------------- reading

    def _start(self, cursor: int) -> int:
        """Where a reader asking for ``cursor`` starts: 0 is the oldest message kept."""
        if cursor == 0:
            return self.ring.first
        if cursor > self.ring.next:
            raise CursorError("field 'cursor': ahead of the session's messages", 400)
        if cursor < self.ring.first:
            raise CursorError("cursor expired", 410)
        return cursor

    async def poll(
        self, cursor: int, wait_s: float, gone: Gone, merge: bool
    ) -> tuple[int, list[dict[str, Any]]]:
        """Every message from ``cursor`` on (acknowledging those before it), held until one
        exists or ``wait_s`` ran out; returns the next cursor and the messages."""
        cursor = self._start(cursor)
        ring = self.ring
        ring.acknowledge(cursor)
        await self._hold(lambda: ring.next > cursor, (), wait_s, gone)
        found = ring.since(cursor)
        messages = [frame for _, frame in found]
        next_cursor = found[-1][0] + 1 if found else max(cursor, ring.first)
        return next_cursor, merge_deltas(messages) if merge else messages

    def stream(
        self,
        cursor: int,
        gone: Gone,
        heartbeat_s: float,
        event: Callable[[int, dict[str, Any]], bytes],
    ) -> AsyncGenerator[bytes, None]:
        """The session's messages from ``cursor`` on as server-sent events (``event(seq,
        frame)`` writes one), with a comment line every ``heartbeat_s`` seconds."""
        cursor = self._start(cursor)
        self.ring.acknowledge(cursor)
        return self._events(cursor, gone, heartbeat_s, event)

    async def _events(
        self,
        cursor: int,
        gone: Gone,
        heartbeat_s: float,
        event: Callable[[int, dict[str, Any]], bytes],
    ) -> AsyncGenerator[bytes, None]:
        ring = self.ring
        yield b": npcbridge event stream\n\n"
        while not self.ended and not gone.done():
            if cursor < ring.first:
                expired = {"type": "error", "code": "bad_request", "retryable": False}
                yield event(ring.first, {**expired, "message": "cursor expired"})
                return
            found = ring.since(cursor)
            if found:
                yield b"".join(event(seq, frame) for seq, frame in found)
                cursor = found[-1][0] + 1
                continue
            before = ring.next

            def grown(at: int = before) -> bool:
                return ring.next > at

            await self._hold(grown, (), heartbeat_s, gone)
            if ring.next == before and not self.ended and not gone.done():
                yield b": keep-alive\n\n"
