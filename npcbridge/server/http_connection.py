"""One plain-HTTP/1.1 connection on the WebSocket port, built on h11.

:class:`~.connection.BridgeConnection` hands a TCP connection over when its first request is not
a WebSocket upgrade. From then on this asyncio protocol owns the socket: h11 parses requests
(keep-alive, ``Content-Length`` and chunked bodies, pipelined requests answered in order) and
frames the answers; :class:`HttpConnection` only moves bytes, enforces the body limit and the
timeouts, and asks its ``respond`` callable for each request's answer.

An answer is an :class:`~npcbridge.plugin.http.HttpResponse` (a whole body) or a
:class:`StreamAnswer` (chunks as they come: server-sent events), which is the transport's own.
A peer that closes its side (or the whole connection) while an answer is held sets the
request's ``gone`` future, so a held poll or an event stream stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast
from urllib.parse import parse_qsl

import h11

from ..plugin.http import HttpRequest, HttpResponse

log = logging.getLogger("npcbridge.server")

#: the largest request head (request line and headers) accepted
MAX_HEAD_BYTES = 16384


@dataclass(frozen=True)
class StreamAnswer:
    """An answer whose body is written as it is produced (chunked on HTTP/1.1)."""

    status: int
    content_type: str
    chunks: AsyncGenerator[bytes, None]
    headers: tuple[tuple[str, str], ...] = ()


Answer = HttpResponse | StreamAnswer
#: done when the peer of a request went away (closed its side or the connection)
Gone = asyncio.Future[None]
#: ``respond(request, gone) -> answer``; ``gone`` is done when the peer went away
Responder = Callable[[HttpRequest, Gone], Awaitable[Answer]]
#: ``refusal(path, headers, status, text)``: the answer to a request that cannot be read whole
Refusal = Callable[[str, Mapping[str, str], HTTPStatus, str], HttpResponse]


@dataclass(frozen=True)
class HttpLimits:
    """How much an HTTP connection may send, and how long it may take."""

    #: the largest request body; more is answered 413
    max_body_bytes: int
    #: how long a kept-alive connection may wait for its next request
    keepalive_s: float
    #: how long one request (head and body) may take to arrive once begun
    request_timeout_s: float


def text_answer(status: HTTPStatus, text: str) -> HttpResponse:
    """A short plain-text answer (``404 not found``)."""
    return HttpResponse(status.value, text.encode() + b"\n", "text/plain; charset=utf-8")


def loggable_path(path: str) -> str:
    """``path`` fit for the log: a session key (``/v1/sessions/<key>/...``) is a credential."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1:3] == ["v1", "sessions"]:
        parts[3] = "<session>"
    return "/".join(parts)


class _Refused(Exception):
    """The request cannot be served; answer ``response`` and close the connection."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response


class HttpConnection(asyncio.Protocol):
    """An asyncio protocol serving plain HTTP/1.1 requests one after another."""

    def __init__(
        self,
        respond: Responder,
        *,
        peer: str,
        trust: Callable[[str, dict[str, str]], bool],
        limits: HttpLimits,
        server_header: str,
        on_close: Callable[[HttpConnection], None],
        refusal: Refusal | None = None,
    ) -> None:
        self.peer = peer
        self._respond = respond
        self._trust = trust
        self._limits = limits
        self._server_header = server_header.encode()
        self._on_close = on_close
        self._refusal: Refusal = refusal or (
            lambda path, headers, status, text: text_answer(status, text)
        )
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._data = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        #: bytes handed to h11 and not yet parsed; reading pauses when they pile up
        self._unparsed = 0
        self._reading = True
        #: done when the peer closed its side or the connection is lost
        self.gone: Gone = asyncio.get_running_loop().create_future()

    # ---------------------------------------------------------------- asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start serving (called by the WebSocket connection that detached this socket)."""
        self._transport = cast(asyncio.Transport, transport)
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        """Hand the bytes to h11; pause reading while they pile up unparsed."""
        self._h11.receive_data(data)
        self._unparsed += len(data)
        self._data.set()
        if self._unparsed > self._limits.max_body_bytes + MAX_HEAD_BYTES and self._reading:
            assert self._transport is not None
            self._transport.pause_reading()
            self._reading = False

    def eof_received(self) -> bool:
        """The peer closed its side: answer what arrived, then close."""
        self._h11.receive_data(b"")
        self._data.set()
        self._went_away()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop serving; whatever was being answered is cancelled."""
        self._went_away()
        self._data.set()
        self._writable.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._on_close(self)

    def _went_away(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def pause_writing(self) -> None:
        """The socket's write buffer is full: answers wait before writing more."""
        self._writable.clear()

    def resume_writing(self) -> None:
        """The write buffer drained."""
        self._writable.set()

    def close(self) -> None:
        """Close the connection now (server shutdown); a held answer is cancelled."""
        if self._transport is not None:
            self._transport.close()

    # ---------------------------------------------------------------- serving

    async def _serve(self) -> None:
        try:
            while True:
                request = await self._read_request()
                if request is None:
                    break
                answer = await self._answer(request)
                await self._send(request, answer)
                if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                    break
                self._h11.start_next_cycle()
        except _Refused as refused:
            await self._send_refusal(refused.response)
        except (TimeoutError, ConnectionError, h11.LocalProtocolError):
            pass
        finally:
            if self._transport is not None:
                self._transport.close()

    async def _next_event(self, deadline: float) -> object:
        """The next h11 event, waiting for data until ``deadline`` (loop time)."""
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                status = HTTPStatus(exc.error_status_hint)
                raise _Refused(text_answer(status, status.phrase.lower())) from None
            if event is not h11.NEED_DATA:
                return event
            self._unparsed = 0
            if not self._reading and self._transport is not None:
                self._transport.resume_reading()
                self._reading = True
            self._data.clear()
            async with asyncio.timeout_at(deadline):
                await self._data.wait()

    async def _read_request(self) -> HttpRequest | None:
        """The next whole request; None when the peer closed or stayed idle too long."""
        loop = asyncio.get_running_loop()
        try:
            event = await self._next_event(loop.time() + self._limits.keepalive_s)
        except TimeoutError:
            return None
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed (or PAUSED after a closed peer)
        deadline = loop.time() + self._limits.request_timeout_s
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        limit = self._limits.max_body_bytes
        too_large = self._refusal(
            path, headers, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large"
        )
        declared = headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > limit:
            raise _Refused(too_large)
        if self._h11.they_are_waiting_for_100_continue:
            # curl (and so Luanti's fetch) asks before sending a body over 1 KiB, and would wait
            # a second for this answer before sending it anyway
            await self._write(
                h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            )
        body = bytearray()
        while True:
            try:
                part = await self._next_event(deadline)
            except TimeoutError:
                timeout = self._refusal(
                    path, headers, HTTPStatus.REQUEST_TIMEOUT, "request timeout"
                )
                raise _Refused(timeout) from None
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > limit:
                    raise _Refused(too_large)
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return None  # the peer closed mid-body
        return HttpRequest(
            method=event.method.decode("latin-1").upper(),
            path=path,
            query=dict(parse_qsl(query, keep_blank_values=True)),
            headers=headers,
            body=bytes(body),
            peer=self.peer,
            trusted=self._trust(self.peer, headers),
        )

    async def _answer(self, request: HttpRequest) -> Answer:
        try:
            return await self._respond(request, self.gone)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("HTTP %s %s failed", request.method, loggable_path(request.path))
            return text_answer(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")

    def _head(
        self, status: int, content_type: str, extra: tuple[tuple[str, str], ...]
    ) -> list[tuple[bytes, bytes]]:
        headers = [(b"server", self._server_header), (b"content-type", content_type.encode())]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
        return headers

    @staticmethod
    def _status(status: int, headers: list[tuple[bytes, bytes]]) -> h11.Response:
        try:
            reason = HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b""
        return h11.Response(status_code=status, headers=headers, reason=reason)

    async def _write(self, event: h11.Event) -> None:
        data = self._h11.send(event)
        if data and self._transport is not None:
            if self._transport.is_closing():
                raise ConnectionResetError("the peer went away")
            self._transport.write(data)
            await self._writable.wait()

    async def _send(self, request: HttpRequest, answer: Answer) -> None:
        head = request.method == "HEAD"
        headers = self._head(answer.status, answer.content_type, answer.headers)
        if isinstance(answer, HttpResponse):
            headers.append((b"content-length", str(len(answer.body)).encode()))
            await self._write(self._status(answer.status, headers))
            if answer.body and not head:
                await self._write(h11.Data(data=answer.body))
            await self._write(h11.EndOfMessage())
            return
        headers.append((b"cache-control", b"no-cache"))
        try:
            await self._write(self._status(answer.status, headers))
            if not head:
                async for chunk in answer.chunks:
                    await self._write(h11.Data(data=chunk))
        finally:
            await answer.chunks.aclose()
        await self._write(h11.EndOfMessage())

    async def _send_refusal(self, response: HttpResponse) -> None:
        """Answer a request that could not be read, then close (its body stays unread)."""
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        headers = self._head(response.status, response.content_type, (("connection", "close"),))
        headers.append((b"content-length", str(len(response.body)).encode()))
        with contextlib.suppress(Exception):
            await self._write(self._status(response.status, headers))
            await self._write(h11.Data(data=response.body))
            await self._write(h11.EndOfMessage())
