"""Abuse limits and secrets, over real sockets.

The in-flight cap and the text-length limit are covered in ``tests/test_bad_input.py``, slow and
vanished clients in ``tests/test_slow_clients.py``; this file covers the per-IP connection cap,
the per-player message rate, the origin allowlist, and that the upstream API key never reaches a
frame, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from ws_helpers import HELLO, eventually, hello, recv

from npcbridge.app import App
from npcbridge.config import Config
from npcbridge.protocol import encode, unpack
from npcbridge.server import serve
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.stack import stack_config

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
