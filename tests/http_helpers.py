"""Plain HTTP against a test server: whole exchanges on a raw socket, and a parsed answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Answer:
    """One parsed HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


async def exchange(
    port: int, data: bytes, *, answers: int = 1, wait_s: float = 5, source: str | None = None
) -> bytes:
    """Write ``data`` on one TCP connection and read until ``answers`` answers arrived (each
    counted by its status line) or the server closed. ``source``: the local address to connect
    from (another address of this machine: the server sees a peer that is not loopback)."""
    local = (source, 0) if source is not None else None
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
    writer.write(data)
    received = b""
    try:
        async with asyncio.timeout(wait_s):
            while True:
                parsed = split_answers(received)
                if len(parsed) >= answers:
                    break
                chunk = await reader.read(65536)
                if not chunk:
                    break
                received += chunk
    finally:
        writer.close()
    return received


def split_answers(data: bytes) -> list[Answer]:
    """The whole answers (Content-Length or chunked bodies) at the start of ``data``."""
    found: list[Answer] = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return found
        lines = data[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = data[end + 4 :]
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_end = rest.find(b"\r\n")
                if size_end < 0:
                    return found
                size = int(rest[:size_end], 16)
                if len(rest) < size_end + 2 + size + 2:
                    return found
                body += rest[size_end + 2 : size_end + 2 + size]
                rest = rest[size_end + 2 + size + 2 :]
                if size == 0:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            if len(rest) < length:
                return found
            body, rest = rest[:length], rest[length:]
        found.append(Answer(status, headers, body))
        data = rest


async def request(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> Answer:
    """One request on its own connection (``Connection: close``), parsed (``source``: see
    :func:`exchange`)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    answers = split_answers(await exchange(port, data, source=source))
    assert answers, "no answer"
    return answers[0]


HELLO = {"type": "hello", "protocol": 1, "client": "test/1"}
SMITH = {"type": "npc.define", "id": "d", "npc": "smith", "persona": {"name": "Brom"}}


class Transport:
    """Calls of the HTTP transport on one server, JSON bodies unless told otherwise."""

    def __init__(self, port: int, source: str | None = None) -> None:
        self.port = port
        #: the local address requests come from (None: 127.0.0.1)
        self.source = source

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        msgpack_body: bool = False,
    ) -> Answer:
        """One request; ``body`` (a map) as JSON or msgpack; the answer parsed either way."""
        import msgpack

        sent = dict(headers or {})
        data = b""
        if body is not None:
            if msgpack_body:
                data = msgpack.packb(body)
                sent["Content-Type"] = "application/msgpack"
            else:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                sent.setdefault("Content-Type", "application/json")
        return await request(self.port, method, path, data, sent, self.source)

    async def open(self, hello: dict[str, Any] | None = None, **headers: str) -> str:
        """A new session's key (asserting it opened)."""
        answer = await self.call("POST", "/v1/sessions", hello or HELLO, headers)
        assert answer.status == 201, answer.body
        return str(answer.json()["session"])

    async def post(self, key: str, message: Any, query: str = "", **options: Any) -> Answer:
        """POST one message to the session."""
        return await self.call("POST", f"/v1/sessions/{key}/messages{query}", message, **options)

    async def poll(self, key: str, query: str = "") -> Answer:
        """GET the session's messages."""
        return await self.call("GET", f"/v1/sessions/{key}/messages{query}")


def decode_body(answer: Answer) -> Any:
    """The answer's body, JSON or msgpack by its content type."""
    import msgpack

    if answer.headers.get("content-type") == "application/msgpack":
        return msgpack.unpackb(answer.body)
    return answer.json()


class EventStream:
    """A server-sent event stream read the way curl reads it: a chunked body, line by line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self._buffer = b""
        self.comments: list[str] = []

    @classmethod
    async def open(cls, port: int, path: str, headers: dict[str, str] | None = None) -> Any:
        """GET ``path`` and read the answer's head."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        stream = cls(reader, writer)
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        lines = raw.decode("latin-1").split("\r\n")
        stream.status = int(lines[0].split()[1])
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                stream.headers[name.strip().lower()] = value.strip()
        return stream

    async def _chunk(self) -> bool:
        size_line = await self.reader.readuntil(b"\r\n")
        size = int(size_line.strip(), 16)
        data = await self.reader.readexactly(size + 2)
        self._buffer += data[:-2]
        return size > 0

    async def next_event(self, wait_s: float = 5) -> dict[str, Any] | None:
        """The next event (``id``, ``event``, ``data`` parsed as JSON); comment lines are kept
        in :attr:`comments`; None when the stream ended."""
        async with asyncio.timeout(wait_s):
            while True:
                while b"\n\n" in self._buffer:
                    block, self._buffer = self._buffer.split(b"\n\n", 1)
                    fields: dict[str, Any] = {}
                    for line in block.decode().split("\n"):
                        if line.startswith(":"):
                            self.comments.append(line[1:].strip())
                            continue
                        name, _, value = line.partition(": ")
                        fields[name] = value
                    if fields:
                        fields["data"] = json.loads(fields["data"])
                        return fields
                if not await self._chunk():
                    return None

    async def read_text(self, size: int, wait_s: float = 5) -> str:
        """The stream's body so far, once it holds at least ``size`` bytes (comments included)."""
        async with asyncio.timeout(wait_s):
            while len(self._buffer) < size:
                await self._chunk()
        return self._buffer.decode()

    def close(self) -> None:
        """Hang up."""
        self.writer.close()


@contextlib.asynccontextmanager
async def serving_app(app: web.Application) -> AsyncIterator[int]:
    """Serve an aiohttp ``app`` on 127.0.0.1 at a free port (yielded) until the block ends."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
