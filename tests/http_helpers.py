"""Plain HTTP against a test server: whole exchanges on a raw socket, and a parsed answer."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    """One parsed HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


async def exchange(port: int, data: bytes, *, answers: int = 1, wait_s: float = 5) -> bytes:
    """Write ``data`` on one TCP connection and read until ``answers`` answers arrived (each
    counted by its status line) or the server closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
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
) -> Answer:
    """One request on its own connection (``Connection: close``), parsed."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    answers = split_answers(await exchange(port, data))
    assert answers, "no answer"
    return answers[0]
