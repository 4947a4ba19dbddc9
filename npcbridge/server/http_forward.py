"""HTTP transport sessions across the workers of ``npcbridge serve --workers N``.

A session lives in the worker process that opened it, and the kernel hands each new TCP
connection to any worker, so a client whose HTTP library opens a connection per request (Luanti's
``fetch``) reaches the other workers too. So a session key names its worker: ``<index>.<secret>``
(:meth:`WorkerPlace.key_prefix`). A worker that gets a request for another worker's session
forwards it (:class:`Forwarder`) to that worker's private listener (:mod:`.http_private`) on
127.0.0.1 and hands the answer back unchanged: status, headers and body, a long-poll held as
long as the owner holds it, an event stream chunk by chunk as the owner writes it.

Each worker publishes where its private listener is, in the folder the workers share:
``http-<index>.json`` with its port, its process id and a secret of its own that a forwarded
request must carry (:data:`SECRET_HEADER`), with the client's address (:data:`PEER_HEADER`).
When the owner is gone (it died; the supervisor starts a new one, which has no sessions yet) the
request is answered as for an expired session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import h11

from ..plugin.http import HttpRequest, HttpResponse
from ..process import write_private_file
from .http_connection import Answer, Gone, StreamAnswer

#: the header carrying the owner's secret (only on the private listener)
SECRET_HEADER = "x-npcbridge-forward-secret"
#: the header carrying the client's IP address (only believed with the secret)
PEER_HEADER = "x-npcbridge-forward-peer"
#: how long connecting to the owner may take (it is on this machine)
CONNECT_TIMEOUT_S = 2.0
#: request headers that belong to one hop (the client's connection), not to the request
_HOP_REQUEST = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "te",
        "upgrade",
        "expect",
        SECRET_HEADER,
        PEER_HEADER,
    }
)
#: answer headers the local connection writes itself
_HOP_ANSWER = frozenset(
    {"server", "content-type", "content-length", "transfer-encoding", "connection", "keep-alive"}
)


@dataclass(frozen=True)
class Listing:
    """Where a worker's private listener is, and the secret it asks of forwarded requests."""

    port: int
    secret: str


@dataclass(frozen=True)
class WorkerPlace:
    """This worker among the workers of one server: its index and the folder they share."""

    folder: Path
    index: int

    @property
    def key_prefix(self) -> str:
        """What the keys of this worker's sessions start with."""
        return f"{self.index}."

    def owner(self, path: str) -> int | None:
        """The worker whose session ``path`` (``/v1/sessions/<key>...``) names; None when it
        names none (``POST /v1/sessions``, a key without a worker)."""
        parts = path.split("/", 4)
        if len(parts) < 4 or parts[1] != "v1" or parts[2] != "sessions":
            return None
        head, dot, _ = parts[3].partition(".")
        if not dot or not head.isdigit() or len(head) > 3:
            return None
        return int(head)

    def _file(self, index: int) -> Path:
        return self.folder / f"http-{index}.json"

    def publish(self, listing: Listing) -> None:
        """Write this worker's listing (atomically, readable by this user only)."""
        text = json.dumps({"port": listing.port, "secret": listing.secret, "pid": os.getpid()})
        write_private_file(self._file(self.index), text.encode())

    def withdraw(self) -> None:
        """Remove this worker's listing (when it is still this process's)."""
        with contextlib.suppress(OSError, ValueError):
            file = self._file(self.index)
            if json.loads(file.read_text(encoding="utf-8")).get("pid") == os.getpid():
                file.unlink()

    def listing(self, index: int) -> Listing | None:
        """Worker ``index``'s listing; None when it has none or its process is gone."""
        try:
            data = json.loads(self._file(index).read_text(encoding="utf-8"))
            port, secret, pid = int(data["port"]), str(data["secret"]), int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's (not expected: the folder is this user's)
        return Listing(port, secret)


class Forwarder:
    """Forwards requests for other workers' sessions to their owners (module docstring)."""

    def __init__(self, place: WorkerPlace) -> None:
        self.place = place

    async def forward(self, owner: int, request: HttpRequest, gone: Gone) -> Answer | None:
        """The owner's answer to ``request``; None when the owner is not there (no listing,
        not listening, or it closed before answering whole)."""
        listing = self.place.listing(owner)
        if listing is None:
            return None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await asyncio.open_connection("127.0.0.1", listing.port)
        except (OSError, TimeoutError):
            return None
        connection = h11.Connection(h11.CLIENT)

        def half_close(_: Gone) -> None:
            # the client went away (or closed its side): so does this request towards the
            # owner, which then ends a held poll or stream as it would for the client
            with contextlib.suppress(OSError, RuntimeError):
                if not writer.is_closing() and writer.can_write_eof():
                    writer.write_eof()

        streaming = False
        try:
            writer.write(_request_bytes(connection, request, listing))
            gone.add_done_callback(half_close)
            head = await _next_event(connection, reader)
            if not isinstance(head, h11.Response):
                return None
            content_type, headers, chunked = _answer_head(head)
            if chunked:
                streaming = True
                chunks = _relay(connection, reader, writer, gone, half_close)
                return StreamAnswer(head.status_code, content_type, chunks, headers)
            body = bytearray()
            while True:
                event = await _next_event(connection, reader)
                if isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return HttpResponse(head.status_code, bytes(body), content_type, headers)
                else:
                    return None  # the owner closed mid-answer
        except (OSError, h11.ProtocolError):
            return None
        finally:
            if not streaming:
                gone.remove_done_callback(half_close)
                writer.close()


def _request_bytes(connection: h11.Connection, request: HttpRequest, listing: Listing) -> bytes:
    """The request as the owner gets it: the client's headers, the secret and the peer."""
    target = request.path + ("?" + urlencode(dict(request.query)) if request.query else "")
    headers = [(k, v) for k, v in request.headers.items() if k not in _HOP_REQUEST]
    headers += [
        ("content-length", str(len(request.body))),
        ("connection", "close"),
        (SECRET_HEADER, listing.secret),
        (PEER_HEADER, request.peer),
    ]
    if not any(name == "host" for name, _ in headers):
        headers.append(("host", "127.0.0.1"))  # h11 asks for one on HTTP/1.1
    data = connection.send(
        h11.Request(
            method=request.method,
            target=target.encode("latin-1"),
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        )
    )
    data = (data or b"") + (connection.send(h11.Data(data=request.body)) or b"")
    return data + (connection.send(h11.EndOfMessage()) or b"")


def _answer_head(head: h11.Response) -> tuple[str, tuple[tuple[str, str], ...], bool]:
    """The owner's answer's content type, the headers to pass on (those the local connection
    does not write itself), and whether its body is a stream (chunked)."""
    content_type = ""
    headers: list[tuple[str, str]] = []
    chunked = False
    for raw_name, raw_value in head.headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name == "content-type":
            content_type = value
        elif name == "transfer-encoding":
            chunked = True
        elif name not in _HOP_ANSWER:
            headers.append((name, value))
    if chunked:  # the local connection writes its own Cache-Control on a stream
        headers = [h for h in headers if h[0] != "cache-control"]
    return content_type, tuple(headers), chunked


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader) -> object:
    """The next h11 event of the owner's answer, reading as much as it needs."""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif not isinstance(event, h11.InformationalResponse):
            return event


async def _relay(
    connection: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    gone: Gone,
    half_close: Callable[[Gone], None],
) -> AsyncGenerator[bytes, None]:
    """An event stream's chunks as the owner writes them (a slow client slows the owner's
    socket, not this worker's memory: nothing is read ahead of what was written on)."""
    try:
        while True:
            event = await _next_event(connection, reader)
            if not isinstance(event, h11.Data):
                return  # its end, or the owner went away
            yield bytes(event.data)
    except (OSError, h11.ProtocolError):
        return
    finally:
        gone.remove_done_callback(half_close)
        writer.close()
