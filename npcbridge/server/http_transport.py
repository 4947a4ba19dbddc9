"""The HTTP transport: protocol v1 sessions over plain HTTP, under ``/v1/`` (docs/protocol.md,
"HTTP transport").

* ``POST /v1/sessions`` (a ``hello``) opens an :class:`~.http_session.HttpSession` -> 201
  ``{"session": <key>, "welcome": {...}}``;
* ``POST /v1/sessions/<key>/messages`` feeds one client message (``?wait=`` for it to finish,
  ``&merge=1``) -> ``{"cursor", "messages"}``; a message refused at once gets its ``error`` as
  the body, with the HTTP status of its code;
* ``GET /v1/sessions/<key>/messages?cursor=&wait=&merge=`` long-polls the session's messages;
* ``GET /v1/sessions/<key>/events`` streams them as server-sent events;
* ``DELETE /v1/sessions/<key>`` ends the session.

Bodies are JSON unless ``Content-Type: application/msgpack``; answers are msgpack when the body
was, or when ``Accept`` names ``application/msgpack``. Every failure is an ``error`` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from ..plugin.http import HttpRequest, HttpResponse
from ..protocol import ErrorCode, ProtocolError, pack
from ..protocol.codec import decode_map
from ..protocol.connection import Decoder
from ..protocol.frames import error_frame
from ..protocol.json_codec import decode_json_map, encode_json
from .http_connection import Answer, Gone, StreamAnswer
from .http_forward import Forwarder, WorkerPlace
from .http_ring import merge_deltas
from .http_session import CursorError, HttpSession

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("npcbridge.server")

#: the longest ``wait`` a request may ask for, in seconds
MAX_WAIT_S = 30.0
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
#: the HTTP status of an ``error`` answering a request, by its code
STATUS_BY_CODE: dict[str, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.UNSUPPORTED_PROTOCOL: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.UNKNOWN_NPC: 422,
    ErrorCode.FILTERED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_IN_FLIGHT: 429,
    ErrorCode.BUDGET_EXCEEDED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UPSTREAM_ERROR: 502,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
}


class _Refusal(Exception):
    """Answer the request with this error message and HTTP status."""

    def __init__(
        self, status: int, code: ErrorCode, message: str, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.frame = error_frame(ProtocolError(code, message, retry_after_ms=retry_after_ms))


def _unknown_session() -> _Refusal:
    return _Refusal(404, ErrorCode.BAD_REQUEST, "unknown session")


class BodyFormat:
    """JSON or msgpack, as a request chose (module docstring)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        accept = headers.get("accept", "").lower()
        self.msgpack_in = content_type in MSGPACK_TYPES
        self.msgpack_out = self.msgpack_in or any(t in accept for t in MSGPACK_TYPES)

    @property
    def decoder(self) -> Decoder:
        """How this request's body becomes a message map."""
        return decode_map if self.msgpack_in else decode_json_map

    def answer(
        self, status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()
    ) -> HttpResponse:
        """An answer holding ``body`` (a map) in the request's format."""
        if self.msgpack_out:
            return HttpResponse(status, pack(body), "application/msgpack", headers)
        return HttpResponse(status, encode_json(body) + b"\n", "application/json", headers)


def transport_refusal(headers: Mapping[str, str], status: int, message: str) -> HttpResponse:
    """An ``error`` ``bad_request`` answer with ``status``, in the request's format (for
    requests refused before they reach the transport: a body too large, too slow)."""
    frame = error_frame(ProtocolError(ErrorCode.BAD_REQUEST, message))
    return BodyFormat(headers).answer(status, frame)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (lower-case header names)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _number(query: Mapping[str, str], name: str, default: float, maximum: float) -> float:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # negative, or not a number at all (NaN too)
        raise _Refusal(400, ErrorCode.BAD_REQUEST, f"field '{name}': must be a number >= 0")
    return min(value, maximum)


def _cursor(text: str | None, name: str) -> int:
    if text is None or text == "":
        return 0
    if not text.isdigit() or len(text) > 18:
        raise _Refusal(400, ErrorCode.BAD_REQUEST, f"field '{name}': must be an integer >= 0")
    return int(text)


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true", "yes")


def sse_event(seq: int, frame: dict[str, Any]) -> bytes:
    """One server-sent event: ``id`` the sequence number, ``event`` the type, JSON data."""
    data = encode_json(frame)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, str(frame.get("type")).encode(), data)


class HttpTransport:
    """The sessions of the HTTP transport and the answer to each ``/v1/`` request."""

    def __init__(self, context: ServerContext, place: WorkerPlace | None = None) -> None:
        """``place``: this worker among several (``npcbridge serve --workers N``): its session
        keys then name it, and requests for other workers' sessions are forwarded to them."""
        self.context = context
        self.settings = context.settings
        self.place = place
        self._forwarder = Forwarder(place) if place is not None else None
        #: open sessions by key
        self.sessions: dict[str, HttpSession] = {}
        self._per_ip: Counter[str] = Counter()
        self._sweeper: asyncio.Task[None] | None = None

    async def __call__(self, request: HttpRequest, gone: Gone) -> Answer:
        """Answer one request under ``/v1/``: here, or by the worker whose session it names."""
        forwarder = self._forwarder
        if forwarder is not None:
            owner = forwarder.place.owner(request.path)
            if owner is not None and owner != forwarder.place.index:
                answer = await forwarder.forward(owner, request, gone)
                if answer is None:  # the owner is gone, and so are its sessions
                    return BodyFormat(request.headers).answer(404, _unknown_session().frame)
                return answer
        return await self.local(request, gone)

    async def local(self, request: HttpRequest, gone: Gone) -> Answer:
        """Answer one request under ``/v1/`` in this process (never forwarded)."""
        fmt = BodyFormat(request.headers)
        try:
            return await self._route(request, gone, fmt)
        except _Refusal as refusal:
            headers: tuple[tuple[str, str], ...] = ()
            if refusal.status == 405:
                headers = (("Allow", refusal.frame.pop("allow")),)
            return fmt.answer(refusal.status, refusal.frame, headers or _retry_after(refusal.frame))
        except CursorError as exc:
            return fmt.answer(exc.status, error_frame(exc))

    async def _route(self, request: HttpRequest, gone: Gone, fmt: BodyFormat) -> Answer:
        allowed = self.settings.allowed_origins
        origin = request.headers.get("origin")
        if allowed is not None and origin is not None and origin not in allowed:
            # the WebSocket rule: a browser page of an origin not listed is refused
            raise _Refusal(403, ErrorCode.BAD_REQUEST, "this origin is not allowed")
        parts = request.path.split("/")[2:]  # after "", "v1"
        method = request.method
        if parts == ["sessions"]:
            _allow(method, "POST")
            return await self._open(request, fmt)
        if len(parts) < 2 or parts[0] != "sessions" or len(parts) > 3:
            raise _Refusal(404, ErrorCode.BAD_REQUEST, "no such endpoint")
        tail = parts[2] if len(parts) == 3 else None
        if tail not in (None, "messages", "events"):
            raise _Refusal(404, ErrorCode.BAD_REQUEST, "no such endpoint")
        _allow(method, {None: "DELETE", "messages": "GET, POST", "events": "GET"}[tail])
        session = self.sessions.get(parts[1])
        if session is None or session.ended:
            raise _unknown_session()
        if tail is None:
            await self._end(session)
            return fmt.answer(200, {"closed": True})
        if tail == "events":
            return self._events(session, request, gone)
        with self._holding(session):
            if method == "POST":
                return await self._message(session, request, gone, fmt)
            return await self._poll(session, request, gone, fmt)

    # ---------------------------------------------------------------- endpoints

    async def _open(self, request: HttpRequest, fmt: BodyFormat) -> Answer:
        cap = self.settings.http_sessions_per_ip
        if self._per_ip[request.peer] >= cap:
            raise _Refusal(
                429,
                ErrorCode.RATE_LIMITED,
                f"more than {cap} sessions from one address",
                retry_after_ms=1000,
            )
        prefix = self.place.key_prefix if self.place is not None else ""
        session = HttpSession(self.context, request.peer, prefix)
        decode = fmt.decoder
        token = bearer_token(request.headers)

        def decode_hello(data: bytes) -> dict[str, Any]:
            raw = decode(data)
            if token is not None and raw.get("type") == "hello" and "token" not in raw:
                raw["token"] = token
            return raw

        first = session.hello(request.body, decode_hello)
        if session.ended:
            return fmt.answer(STATUS_BY_CODE.get(first.get("code", ""), 400), first)
        self.sessions[session.key] = session
        self._per_ip[session.peer] += 1
        self._sweep_soon()
        return fmt.answer(201, {"session": session.key, "welcome": first})

    async def _message(
        self,
        session: HttpSession,
        request: HttpRequest,
        gone: Gone,
        fmt: BodyFormat,
    ) -> Answer:
        wait_s = _number(request.query, "wait", 0.0, MAX_WAIT_S)
        decode = fmt.decoder
        outcome = await session.receive(request.body, decode, wait_s, gone)
        if session.ended:
            await self._end(session)
        if outcome.refusal is not None:
            refusal = outcome.refusal
            status = STATUS_BY_CODE.get(refusal["code"], 400)
            return fmt.answer(status, refusal, _retry_after(refusal))
        messages = outcome.messages
        if _flag(request.query, "merge"):
            messages = merge_deltas(messages)
        return fmt.answer(200, {"cursor": outcome.cursor, "messages": messages})

    async def _poll(
        self,
        session: HttpSession,
        request: HttpRequest,
        gone: Gone,
        fmt: BodyFormat,
    ) -> Answer:
        cursor = _cursor(request.query.get("cursor"), "cursor")
        wait_s = _number(request.query, "wait", 0.0, MAX_WAIT_S)
        next_cursor, messages = await session.poll(
            cursor, wait_s, gone, _flag(request.query, "merge")
        )
        return fmt.answer(200, {"cursor": next_cursor, "messages": messages})

    def _events(self, session: HttpSession, request: HttpRequest, gone: Gone) -> Answer:
        last = request.headers.get("last-event-id")
        if last is not None and last.strip() != "":
            cursor = _cursor(last.strip(), "Last-Event-ID") + 1
        else:
            cursor = _cursor(request.query.get("cursor"), "cursor")
        events = session.stream(cursor, gone, self.settings.http_heartbeat_s, sse_event)
        return StreamAnswer(
            200,
            "text/event-stream; charset=utf-8",
            self._held_stream(session, events),
            (("X-Accel-Buffering", "no"),),
        )

    async def _held_stream(self, session: HttpSession, events: AsyncIterator[bytes]) -> Any:
        with self._holding(session):
            async for chunk in events:
                yield chunk

    # ---------------------------------------------------------------- lifetimes

    @contextlib.contextmanager
    def _holding(self, session: HttpSession) -> Any:
        session.holders += 1
        try:
            yield
        finally:
            session.holders -= 1
            session.last_seen = session.loop.time()

    async def _end(self, session: HttpSession) -> None:
        if self.sessions.pop(session.key, None) is not None:
            self._per_ip[session.peer] -= 1
            if self._per_ip[session.peer] <= 0:
                del self._per_ip[session.peer]
        await session.end()
        log.info("http session=%s peer=%s ended", session.id, session.peer)

    def _sweep_soon(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """End sessions idle for ``server.http_session_idle_s`` while any session is open."""
        idle_s = self.settings.http_session_idle_s
        period = max(0.05, min(1.0, idle_s / 4))
        loop = asyncio.get_running_loop()
        while self.sessions:
            await asyncio.sleep(period)
            now = loop.time()
            for session in list(self.sessions.values()):
                since = session.idle_since()
                if session.ended or (since is not None and now - since >= idle_s):
                    log.info("http session=%s idle: expired", session.id)
                    await self._end(session)

    async def close(self) -> None:
        """End every session (server shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for session in list(self.sessions.values()):
            await self._end(session)

    @property
    def open_sessions(self) -> int:
        """Sessions open now."""
        return len(self.sessions)


def _retry_after(frame: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``Retry-After`` (whole seconds, rounded up) for an error with ``retry_after_ms``."""
    if "retry_after_ms" not in frame:
        return ()
    return (("Retry-After", str(max(1, -(-int(frame["retry_after_ms"]) // 1000)))),)


def _allow(method: str, allowed: str) -> None:
    if method not in allowed.split(", "):
        refusal = _Refusal(405, ErrorCode.BAD_REQUEST, "method not allowed")
        refusal.frame["allow"] = allowed
        raise refusal
