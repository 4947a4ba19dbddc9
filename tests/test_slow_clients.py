"""Slow and vanished clients, over real sockets: a client that stops reading is closed with
bounded memory (the queue bound, then the send timeout), one that reads late still gets a long
reply whole, deltas behind a busy socket coalesce, and a client that vanishes mid-reply has its
upstream request cancelled.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from ws_helpers import eventually, hello, recv

from npcbridge.protocol import encode
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

SMITH = {"name": "Brom", "description": "A blacksmith."}


async def slow_reader(bridge: Bridge) -> tuple[ClientConnection, Any]:
    """A client on a socket with a small receive buffer that reads nothing after the welcome,
    and the server's session for it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", bridge.server.port))
    ws = await connect(bridge.url, sock=sock, max_queue=1, max_size=None)
    assert (await hello(ws))["type"] == "welcome"
    return ws, next(iter(bridge.app.sessions))


async def test_client_that_stops_reading_is_closed_with_bounded_memory(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream,
        tmp_path,
        server__send_queue_bytes=64 * 1024,
        server__send_timeout_s=2.0,
    ) as bridge:
        ws, session = await slow_reader(bridge)
        highest = 0
        for i in range(4):
            await ws.send(
                encode(
                    {
                        "type": "say",
                        "id": i,
                        "npc": "blacksmith",
                        "player": "p",
                        "text": "[[words:60000]]",
                    }
                )
            )
        # the server sends until the socket is full, then queues (coalesced) up to the bound,
        # then gives up on the client
        for _ in range(400):
            highest = max(highest, session.outbox.queued_bytes)
            if session.outbox.stopped is not None:
                break
            await asyncio.sleep(0.025)
        assert session.outbox.stopped == "slow"
        assert highest <= 64 * 1024 + 32 * 1024  # the bound plus at most one delta
        assert session.outbox.pending == 0
        # its turns were cancelled, and with them the upstream requests
        await eventually(lambda: not bridge.app.sessions, timeout=10)
        await eventually(lambda: bridge.fake.active_streams == 0, timeout=10)
        # other clients are served as before
        async with await bridge.client() as other:
            reply = await other.say("blacksmith", "q", "hello")
            assert (await reply.text()).startswith("Well met")
        ws.transport.abort()


async def test_a_client_that_reads_late_gets_a_long_reply_whole(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A reply's text is held and counted once (its last coalesced delta is sent from the
    reply.end that repeats it), so a reply under the bound never closes a reading client."""
    bound = 256 * 1024
    async with await start_bridge(
        fake_upstream, tmp_path, server__send_queue_bytes=bound
    ) as bridge:
        ws, session = await slow_reader(bridge)
        server_sock = session.ws.transport.get_extra_info("socket")
        server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        say = {"type": "say", "id": 1, "npc": "blacksmith", "player": "p"}
        ws.transport.pause_reading()  # the client reads nothing more until the reply is made
        await ws.send(encode({**say, "text": "[[words:40000]]"}))  # about 200 KB of text
        await eventually(lambda: not session.turns, timeout=20)
        assert session.outbox.stopped is None
        ws.transport.resume_reading()
        frames = []
        while not frames or frames[-1]["type"] != "reply.end":
            frames.append(await recv(ws))
        end = frames[-1]
        text = "".join(f["text"] for f in frames if f["type"] == "reply.delta")
        assert text == end["text"] and len(text.encode()) > bound * 3 // 4
        assert [f["seq"] for f in frames if f["type"] == "reply.delta"] == list(
            range(len(frames) - 2)
        )
        # counted once: never more than the text plus the frames' own bytes
        assert session.outbox.peak_bytes < len(text.encode()) + 4096
        assert session.outbox.queued_bytes == 0
        await ws.close()


async def test_send_timeout_closes_a_client_that_stops_reading(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # a queue bound large enough that only the send timeout can trigger
    async with await start_bridge(
        fake_upstream,
        tmp_path,
        server__send_queue_bytes=16 * 1024 * 1024,
        server__send_timeout_s=0.5,
    ) as bridge:
        ws, session = await slow_reader(bridge)
        # loopback send buffers grow to megabytes; keep the server's small so it fills quickly
        server_sock = session.ws.transport.get_extra_info("socket")
        server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        fake_upstream.tokens_per_s = 5000
        await ws.send(
            encode(
                {
                    "type": "say",
                    "id": 1,
                    "npc": "blacksmith",
                    "player": "p",
                    "text": "[[words:100000]]",
                }
            )
        )
        await eventually(lambda: session.outbox.stopped is not None, timeout=15)
        assert session.outbox.stopped == "slow"
        await eventually(lambda: not bridge.app.sessions, timeout=10)
        await bridge.fake.wait_disconnect(timeout=10)
        ws.transport.abort()


async def test_deltas_behind_a_slow_socket_coalesce(bridge: Bridge) -> None:
    """Tokens that arrive while the socket is busy go out as one frame, seq stays contiguous."""
    async with await bridge.client() as client:
        reply = await client.say("blacksmith", "p", "[[words:3000]]")
        text = await reply.text()
    deltas = [f for f in reply.frames if f["type"] == "reply.delta"]
    assert "".join(d["text"] for d in deltas) == text
    assert [d["seq"] for d in deltas] == list(range(len(deltas)))
    # unpaced upstream: 3000 tokens arrive faster than frames go out
    assert len(deltas) < 3000


async def test_vanished_client_cancels_its_upstream_request(bridge: Bridge) -> None:
    client = await bridge.client()
    await client.define_npc("smith", SMITH)
    reply = await client.say("smith", "p1", "[[slow]]")
    async for _ in reply:
        break  # one delta arrived: the upstream stream is open
    assert bridge.fake.active_streams == 1
    client.ws.transport.abort()  # gone without a close frame
    await bridge.fake.wait_disconnect(timeout=5)
    await eventually(lambda: not bridge.app.sessions, timeout=5)
    assert bridge.fake.active_streams == 0
