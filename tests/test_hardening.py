"""Abuse limits, slow and vanished clients, and secrets, over real sockets.

The in-flight cap and the text-length limit are covered in ``tests/test_bad_input.py``; this file
covers the per-IP connection cap, the per-player message rate, the origin allowlist, a client
that stops reading (bounded memory, then a 1008 close), a client that vanishes mid-reply (its
upstream request is cancelled), and that the upstream API key never reaches a frame, a log line
or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from npcbridge.app import App
from npcbridge.config import Config
from npcbridge.protocol import encode, unpack
from npcbridge.server import serve
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.stack import stack_config

HELLO = {"type": "hello", "protocol": 1, "client": "test"}
SMITH = {"name": "Brom", "description": "A blacksmith."}


async def hello(ws: ClientConnection) -> dict[str, Any]:
    await ws.send(encode(HELLO))
    return await recv(ws)


async def eventually(predicate: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Poll ``predicate`` until it is true (server-side state has no events to wait on)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    data = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(data, bytes)
    frame = unpack(data)
    assert isinstance(frame, dict)
    return frame


# ------------------------------------------------------------------------- per-IP connection cap


async def test_per_ip_connection_cap(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__max_connections_per_ip=2
    ) as bridge:
        a = await bridge.client()
        b = await bridge.client()
        with pytest.raises(InvalidStatus) as refused:
            await bridge.client()
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["Retry-After"] == "1"
        # the two admitted connections still work
        assert (await a.ping())["type"] == "pong"
        await b.close()
        await eventually(lambda: len(bridge.app.sessions) == 1)
        c = await bridge.client()  # a slot was freed
        assert (await c.ping())["type"] == "pong"
        await a.close()
        await c.close()


async def test_per_ip_cap_holds_under_a_burst(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__max_connections_per_ip=3
    ) as bridge:

        async def attempt() -> ClientConnection | None:
            try:
                ws = await connect(bridge.url)
                welcome = await hello(ws)
            except (InvalidStatus, ConnectionClosed):
                return None
            if welcome["type"] != "welcome":
                # raced past the HTTP check: answered rate_limited, then closed 1008
                assert welcome["code"] == "rate_limited"
                with pytest.raises(ConnectionClosed):
                    await recv(ws)
                assert ws.close_code == 1008
                return None
            return ws

        results = await asyncio.gather(*(attempt() for _ in range(12)))
        admitted = [ws for ws in results if ws is not None]
        assert len(admitted) == 3
        assert len(bridge.app.sessions) == 3
        for ws in admitted:
            await ws.close()


async def test_healthz_is_not_subject_to_the_cap(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__max_connections_per_ip=1
    ) as bridge:
        a = await bridge.client()
        url = f"http://127.0.0.1:{bridge.server.port}/healthz"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        assert b'"connections": 1' in body
        await a.close()


# ------------------------------------------------------------------------- message rate


async def test_message_rate_per_player(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__max_messages_per_s=4) as bridge:
        ws = await connect(bridge.url)
        await hello(ws)
        # a burst of one second's worth passes, the rest is refused with rate_limited
        for i in range(10):
            await ws.send(encode({"type": "ping", "id": i}))
        answers = [await recv(ws) for _ in range(10)]
        assert [a["type"] for a in answers[:4]] == ["pong"] * 4
        limited = [a for a in answers if a["type"] == "error"]
        assert len(limited) == 6
        for a in limited:
            assert a["code"] == "rate_limited"
            assert a["retryable"] is True
            assert 1 <= a["retry_after_ms"] <= 1000
        assert {a["id"] for a in answers} == set(range(10))
        # another player on the same connection has a bucket of its own
        say = {"type": "say", "id": "b1", "npc": "blacksmith", "player": "bob", "text": "hi"}
        await ws.send(encode(say))
        first = await recv(ws)
        assert first["type"] == "reply.start", first
        while (await recv(ws))["type"] != "reply.end":
            pass
        # the bucket refills: after the advertised wait the first player may talk again
        await asyncio.sleep(max(a["retry_after_ms"] for a in limited) / 1000 + 0.05)
        await ws.send(encode({"type": "ping", "id": "later"}))
        assert (await recv(ws))["type"] == "pong"
        # rate-limited messages are not "bad": the connection stays open
        assert ws.close_code is None
        await ws.close()


async def test_rate_limit_is_per_player_for_say(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__max_messages_per_s=2) as bridge:
        ws = await connect(bridge.url)
        await hello(ws)
        frames = []
        for i in range(3):
            say = {"type": "say", "id": i, "npc": "blacksmith", "player": "alice", "text": "hi"}
            await ws.send(encode(say))
        await ws.send(
            encode({"type": "say", "id": "b", "npc": "blacksmith", "player": "bob", "text": "hi"})
        )
        ends: set[Any] = set()
        errors: dict[Any, str] = {}
        while len(ends) + len(errors) < 4:
            frame = await recv(ws)
            frames.append(frame)
            if frame["type"] == "reply.end":
                ends.add(frame["id"])
            elif frame["type"] == "error":
                errors[frame["id"]] = frame["code"]
        assert ends == {0, 1, "b"}
        assert errors == {2: "rate_limited"}
        await ws.close()


# ------------------------------------------------------------------------- origins


async def test_origin_allowlist(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__allowed_origins=["https://game.example"]
    ) as bridge:
        with pytest.raises(InvalidStatus) as refused:
            await connect(bridge.url, origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        ok = await connect(bridge.url, origin="https://game.example")  # type: ignore[arg-type]
        assert (await hello(ok))["type"] == "welcome"
        await ok.close()
        # native game clients send no Origin header and are always allowed
        native = await connect(bridge.url)
        assert (await hello(native))["type"] == "welcome"
        await native.close()


# ------------------------------------------------------------------------- slow and dead clients


async def test_client_that_stops_reading_is_closed_with_bounded_memory(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream,
        tmp_path,
        server__send_queue_bytes=64 * 1024,
        server__send_timeout_s=2.0,
    ) as bridge:
        # a socket with a small receive buffer, and a client that never reads after the welcome
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", bridge.server.port))
        ws = await connect(bridge.url, sock=sock, max_queue=1, max_size=None)
        assert (await hello(ws))["type"] == "welcome"
        session = next(iter(bridge.app.sessions))
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
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", bridge.server.port))
        ws = await connect(bridge.url, sock=sock, max_queue=1, max_size=None)
        assert (await hello(ws))["type"] == "welcome"
        session = next(iter(bridge.app.sessions))
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
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", bridge.server.port))
        ws = await connect(bridge.url, sock=sock, max_queue=1, max_size=None)
        assert (await hello(ws))["type"] == "welcome"
        session = next(iter(bridge.app.sessions))
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


# ------------------------------------------------------------------------- secrets

CANARY = "gsk_CANARY_d1st1nct1ve_k3y_7f3a9c"


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


async def _bridge_with_key(fake: FakeUpstream, tmp_path: Path, **server: Any) -> Any:
    config = stack_config(fake.base_url, str(tmp_path / "bridge.db"), **server)
    data = config.model_dump()
    data["upstream"]["api_key"] = CANARY
    data["server"]["token"] = None
    data["retry"] = {"max_attempts": 1}
    data["upstream"]["first_token_timeout_s"] = 0.5
    app = App(Config.model_validate(data), entry_points=False)
    return await serve(app, port=0)


async def test_api_key_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # the upstream accepts a different key: every request is answered 401 first
    async with FakeUpstream(api_key="some-other-key", stall_directive_s=3) as fake:
        async with await _bridge_with_key(fake, tmp_path) as server:
            raw: list[bytes] = []
            ws = await connect(server.url, max_size=None)
            await ws.send(encode(HELLO))
            raw.append(await ws.recv())  # type: ignore[arg-type]

            async def turn(rid: str, text: str) -> None:
                say = {"type": "say", "id": rid, "npc": "blacksmith", "player": "p", "text": text}
                await ws.send(encode(say))
                while True:
                    data = await asyncio.wait_for(ws.recv(), 10)
                    raw.append(data)  # type: ignore[arg-type]
                    frame = unpack(data)  # type: ignore[arg-type]
                    if frame.get("id") == rid and frame["type"] in ("error",):
                        return
                    if frame.get("id") == rid and frame["type"] == "reply.end":
                        if frame["finish"] != "error":
                            return

            await turn("unauthorized", "hello")
            fake.api_key = None  # now every other kind of failure
            for status in (400, 403, 404, 413, 422, 429, 500, 502, 503):
                await turn(f"s{status}", f"[[status:{status}]]")
            await turn("cut", "[[reply:one two three four]] [[cut:2]]")
            await turn("stall", "[[stall:3]]")
            await ws.close()
            frames = [unpack(d) for d in raw]
            codes = {f.get("code") for f in frames}
            assert {"upstream_error", "rate_limited", "upstream_timeout"} <= codes
            for path in ("/healthz", "/metrics"):
                url = f"http://127.0.0.1:{server.port}{path}"
                raw.append(await asyncio.to_thread(_http_get, url))
    assert fake.errors >= 10
    assert CANARY not in repr(server.app.config)
    assert CANARY not in str(server.app.config.model_dump())
    for data in raw:
        assert CANARY.encode() not in data
        assert CANARY[8:24].encode() not in data
    text = caplog.text + "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert caplog.records  # logging was captured at DEBUG
    assert CANARY not in text
    assert CANARY[8:24] not in text
