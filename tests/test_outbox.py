"""The outbox's byte count against a socket that never completes a send (no timing involved):
what is counted, that a reply's text counts once, and the close once over the bound."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.protocol import State

from npcbridge.protocol import encode, unpack
from npcbridge.server.outbox import Outbox


class StuckSocket:
    """A connection whose sends complete only when ``release`` is set."""

    state = State.OPEN

    def __init__(self) -> None:
        self.remote_address = ("127.0.0.1", 1)
        self.release = asyncio.Event()
        self.sent: list[bytes] = []
        self.closed_with: int | None = None

    def write_buffer_size(self) -> int:
        return 1 << 30  # always "busy": no first-delta fast path

    def send_now(self, data: bytes) -> bool:
        raise AssertionError("no fast path while the buffer is full")

    def abort(self) -> None:
        pass

    async def send(self, data: bytes) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code


def _end(request_id: Any, text: str) -> dict[str, Any]:
    return {
        "type": "reply.end",
        "id": request_id,
        "npc": "smith",
        "text": text,
        "finish": "stop",
        "model": "m",
        "usage": {"input_tokens": 1, "output_tokens": 1},
        "cost_usd": 0.0,
        "timing": {"queue_ms": 0.0, "ttft_ms": 0.0, "total_ms": 0.0},
    }


async def test_a_reply_is_counted_once_and_a_reader_is_not_closed() -> None:
    ws = StuckSocket()
    outbox = Outbox(ws, send_timeout_s=60, max_queue_bytes=150_000)  # type: ignore[arg-type]
    pieces = [f"{i:04d}" + "é" * 498 for i in range(100)]  # 1000 bytes of UTF-8 each
    outbox.emit({"type": "reply.start", "id": 1, "npc": "smith", "model": "m"})
    await asyncio.sleep(0)  # the writer takes reply.start and waits on the socket
    for piece in pieces:
        outbox.emit({"type": "reply.delta", "id": 1, "text": piece})
    queued = outbox.queued_bytes
    start = len(encode({"type": "reply.start", "id": 1, "npc": "smith", "model": "m"}))
    assert start + 100_000 < queued < start + 100_100  # UTF-8 bytes, one frame's overhead
    text = "".join(pieces)
    end = _end(1, text)
    outbox.emit(end)
    # the waiting delta now reads its text from reply.end: the text is held and counted once
    assert outbox.queued_bytes < start + len(encode(end)) + 100
    assert outbox.stopped is None
    ws.release.set()  # the client reads
    await outbox.drain()
    frames = [unpack(data) for data in ws.sent]
    assert [f["type"] for f in frames] == ["reply.start", "reply.delta", "reply.end"]
    assert frames[1] == {"type": "reply.delta", "id": 1, "seq": 0, "text": text}
    assert outbox.queued_bytes == 0 and ws.closed_with is None
    await outbox.close()


async def test_a_client_that_never_reads_is_closed_once_over_the_bound() -> None:
    ws = StuckSocket()
    outbox = Outbox(ws, send_timeout_s=60, max_queue_bytes=20_000)  # type: ignore[arg-type]
    outbox.emit({"type": "reply.start", "id": 1, "npc": "smith", "model": "m"})
    await asyncio.sleep(0)
    sent = 0
    while outbox.stopped is None:
        outbox.emit({"type": "reply.delta", "id": 1, "text": "x" * 1000})
        sent += 1
    assert outbox.stopped == "slow" and sent == 20  # the 20th delta crossed 20,000 bytes
    assert outbox.peak_bytes <= 20_000 + 1000
    outbox.emit({"type": "reply.delta", "id": 1, "text": "more"})  # dropped: closing
    assert outbox.pending == 0 and outbox.queued_bytes == 0
    await asyncio.sleep(0.01)
    assert ws.closed_with == 1008
    await outbox.close()


def test_the_server_uses_only_public_websockets_api() -> None:
    """websockets documents a connection's methods and a few attributes; its ``protocol``,
    ``transport``, ``send_data`` and underscored names are internals that change between
    releases, so the server never reaches for them."""
    import re
    from pathlib import Path

    import npcbridge.server

    private = re.compile(r"\.(protocol|transport)\.|\.send_data\(|\b(ws|connection)\._\w")
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(Path(npcbridge.server.__file__).parent.glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line) and "from ." not in line and "npcbridge.protocol." not in line
    ]
    assert found == []
