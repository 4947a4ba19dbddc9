"""Raw WebSocket helpers for suites that speak the protocol frame by frame (no client library):
the hello a test sends, reading one decoded frame, and polling server-side state."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection

from npcbridge.protocol import encode, unpack

HELLO = {"type": "hello", "protocol": 1, "client": "test"}


async def recv(ws: ClientConnection) -> dict[str, Any]:
    """The next frame from ``ws``, decoded (at most 5 s; a binary msgpack map)."""
    data = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(data, bytes)
    frame = unpack(data)
    assert isinstance(frame, dict)
    return frame


async def hello(ws: ClientConnection) -> dict[str, Any]:
    """Send :data:`HELLO` and return the server's answer."""
    await ws.send(encode(HELLO))
    return await recv(ws)


async def eventually(predicate: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Poll ``predicate`` until it is true (server-side state has no events to wait on)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
