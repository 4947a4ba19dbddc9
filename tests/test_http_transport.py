"""The HTTP transport over real HTTP on 127.0.0.1: sessions, messages, waiting, merging, every
error answer, msgpack bodies, and the same answers as over WebSocket for bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect

from npcbridge.protocol import encode, unpack
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply
from tests.http_helpers import HELLO, SMITH, Transport, decode_body

SAY = {"type": "say", "id": 1, "npc": "smith", "player": "p1", "text": "[[words:12]]"}


@pytest.fixture
def http(bridge: Bridge) -> Transport:
    return Transport(bridge.server.port)


async def test_a_session_from_hello_to_delete(http: Transport) -> None:
    answer = await http.call("POST", "/v1/sessions", HELLO)
    assert answer.status == 201 and answer.headers["content-type"] == "application/json"
    opened = answer.json()
    key, welcome = opened["session"], opened["welcome"]
    assert welcome["type"] == "welcome" and welcome["protocol"] == 1
    assert len(key) >= 22 and welcome["session"] != key  # the logged id is not the secret
    defined = await http.post(key, SMITH)
    assert (defined.status, defined.json()) == (200, {"cursor": 1, "messages": [ok("d")]})
    pong = await http.post(key, {"type": "ping"})
    assert pong.json() == {"cursor": 2, "messages": [{"type": "pong"}]}
    # a say answers at once with what exists, or (?wait) with the finished reply
    said = (await http.post(key, SAY, "?wait=10")).json()
    types = [m["type"] for m in said["messages"]]
    assert types[0] == "reply.start" and types[-1] == "reply.end" and "reply.delta" in types
    deltas = [m for m in said["messages"] if m["type"] == "reply.delta"]
    assert [d["seq"] for d in deltas] == list(range(len(deltas)))
    end = said["messages"][-1]
    assert "".join(d["text"] for d in deltas) == end["text"] and len(end["text"].split()) == 12
    assert isinstance(end["cost_usd"], float) and said["cursor"] == 2 + len(said["messages"])
    merged = (await http.post(key, {**SAY, "id": 2}, "?wait=10&merge=1")).json()["messages"]
    assert [m["type"] for m in merged] == ["reply.start", "reply.delta", "reply.end"]
    assert merged[1]["text"] == merged[2]["text"] and merged[1]["seq"] == 0
    # the poll sees every message of the session, in order
    polled = (await http.poll(key, "?cursor=0")).json()
    assert polled["messages"][:2] == [ok("d"), {"type": "pong"}]
    assert polled["cursor"] == len(polled["messages"])
    assert (await http.call("DELETE", f"/v1/sessions/{key}")).json() == {"closed": True}
    gone = await http.poll(key)
    assert gone.status == 404 and gone.json() == error("bad_request", "unknown session")


def ok(request_id: Any) -> dict[str, Any]:
    return {"type": "ok", "id": request_id}


def error(code: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "retryable": False, **fields}


async def test_hello_answers(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__token="s3cret") as bridge:
        http = Transport(bridge.server.port)
        for hello, headers in [(HELLO, {}), ({**HELLO, "token": "t0ken-sent"}, {})]:
            answer = await http.call("POST", "/v1/sessions", hello, headers)
            assert answer.status == 401 and answer.json() == error(
                "unauthorized", "missing or wrong token", refused="hello"
            )
            assert b"t0ken" not in answer.body
        await http.open({**HELLO, "token": "s3cret"})
        await http.open(HELLO, Authorization="Bearer s3cret")  # the token in a header
        wrong = await http.call("POST", "/v1/sessions", HELLO, {"Authorization": "Bearer no"})
        assert wrong.status == 401
        old = await http.call("POST", "/v1/sessions", {**HELLO, "protocol": 99, "token": "s3cret"})
        assert old.status == 400 and old.json()["code"] == "unsupported_protocol"
        first = await http.call("POST", "/v1/sessions", {"type": "ping", "id": 3})
        assert first.status == 400 and first.json()["code"] == "bad_request"
        assert first.json()["message"] == "the first message must be 'hello'"
        broken = await http.call("POST", "/v1/sessions", b"{not json")
        assert broken.status == 400 and broken.json()["message"].startswith("not a JSON value")
        assert len(bridge.server.http_transport.sessions) == 2  # the refused ones are not kept


async def test_msgpack_bodies_and_answers(http: Transport) -> None:
    opened = await http.call("POST", "/v1/sessions", HELLO, msgpack_body=True)
    assert opened.status == 201 and opened.headers["content-type"] == "application/msgpack"
    key = decode_body(opened)["session"]
    await http.post(key, SMITH, msgpack_body=True)
    said = decode_body(await http.post(key, SAY, "?wait=10&merge=1", msgpack_body=True))
    end = said["messages"][-1]
    assert end["type"] == "reply.end" and type(end["cost_usd"]) is float
    # a JSON body with Accept: application/msgpack gets msgpack too
    pong = await http.post(
        key, {"type": "ping", "id": 9}, headers={"Accept": "application/msgpack"}
    )
    assert decode_body(pong)["messages"] == [{"type": "pong", "id": 9}]
    # byte-identical map to what the WebSocket frame of the same message decodes to
    assert unpack(encode({"type": "pong", "id": 9})) == decode_body(pong)["messages"][0]


#: bad messages, each as a JSON body where JSON can carry it, and the msgpack bytes
BAD = [
    msgpack.packb([1, 2]),
    msgpack.packb({"id": 7, "npc": "x"}),
    msgpack.packb({"id": 7, "type": 5}),
    msgpack.packb({"id": 7, "type": "say", "npc": "x"}),
    msgpack.packb({"id": 7, "type": "say", "npc": "x", "player": 1, "text": "hi"}),
    msgpack.packb({"id": 7, "type": "memory.add", "npc": "x", "text": "t", "importance": 11}),
    msgpack.packb({"id": 7, "type": "nope"}),
    msgpack.packb({"id": 7, "type": "x.unclaimed"}),
    msgpack.packb({"id": 7, "type": "say", "npc": "ghost", "player": "p", "text": "hi"}),
    msgpack.packb({"id": 7, "type": "cancel"}),
    msgpack.packb({"id": "z" * 200, "type": "ping"}),
    msgpack.packb({"id": 7, "type": "hello", "protocol": 1, "client": "again"}),
    msgpack.packb({"id": 7, "type": "npc.define", "npc": "x"}),
    b"\xc1",
    b"\x92\x01",
]


async def test_bad_input_gets_the_websocket_answer(bridge: Bridge, http: Transport) -> None:
    """Each bad message answers the very error frame a WebSocket client gets, as the body of a
    4xx answer (msgpack and, where JSON can say it, JSON)."""
    key = await http.open()
    ws = await connect(bridge.url)
    try:
        await ws.send(encode(HELLO))
        assert unpack(await ws.recv())["type"] == "welcome"
        for data in BAD:
            await ws.send(data)
            expected = unpack(await asyncio.wait_for(ws.recv(), 5))
            assert expected["type"] == "error"
            answer = await http.call(
                "POST",
                f"/v1/sessions/{key}/messages?wait=5",
                data,
                {"Content-Type": "application/msgpack"},
            )
            assert 400 <= answer.status < 500, expected
            assert decode_body(answer) == expected
            try:
                as_json = json.dumps(msgpack.unpackb(data)).encode()
            except ValueError:
                continue  # not msgpack at all: the JSON case is its own
            via_json = await http.post(key, as_json, "?wait=5")
            # the same answer; only the name of the format differs
            message = expected["message"].replace("a msgpack map", "a JSON object")
            assert via_json.json() == {**expected, "message": message}, expected
            await ws.send(encode({"type": "ping"}))  # keep both below the bad-message limit
            await ws.recv()
            await http.post(key, {"type": "ping"})
    finally:
        await ws.close()


async def test_error_statuses(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream,
        tmp_path,
        server__max_in_flight=1,
        server__max_messages_per_s=5,
        server__max_bad_messages=2,
    ) as bridge:
        http = Transport(bridge.server.port)
        key = await http.open()
        await http.post(key, SMITH)
        slow = {**SAY, "text": "[[slow]]"}
        assert (await http.post(key, slow)).status == 200
        busy = await http.post(key, {**slow, "id": 2})
        assert busy.status == 429 and busy.json()["code"] == "too_many_in_flight"
        # cancel with ?wait holds until the cancelled reply ended
        cancelled = (await http.post(key, {"type": "cancel", "id": 1}, "?wait=10")).json()
        assert cancelled["messages"][-1]["finish"] == "cancelled"
        for _ in range(10):
            limited = await http.post(key, {"type": "ping", "player": "p9"})
            if limited.status != 200:
                break
        assert limited.status == 429 and limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        await asyncio.sleep(1.1)
        # more than max_bad_messages in a row ends the session, as it closes a WebSocket
        for _ in range(3):
            assert (await http.post(key, b"[]")).status == 400
        assert (await http.post(key, {"type": "ping"})).status == 404
        assert not bridge.server.http_transport.sessions


async def test_endpoint_and_parameter_errors(http: Transport) -> None:
    key = await http.open()
    for method, path, status in [
        ("GET", "/v1/sessions", 405),
        ("PUT", f"/v1/sessions/{key}/messages", 405),
        ("POST", f"/v1/sessions/{key}", 405),
        ("GET", "/v1/nowhere", 404),
        ("GET", f"/v1/sessions/{key}/other", 404),
        ("GET", "/v1/sessions/not-a-session/messages", 404),
        ("DELETE", "/v1/sessions/not-a-session", 404),
        ("GET", f"/v1/sessions/{key}/messages?cursor=-1", 400),
        ("GET", f"/v1/sessions/{key}/messages?cursor=x", 400),
        ("GET", f"/v1/sessions/{key}/messages?cursor=99", 400),
        ("GET", f"/v1/sessions/{key}/messages?wait=soon", 400),
        ("GET", f"/v1/sessions/{key}/messages?wait=nan", 400),
    ]:
        answer = await http.call(method, path)
        assert answer.status == status, (method, path, answer.body)
        body = answer.json()
        assert body["type"] == "error" and body["code"] == "bad_request", body
        assert "not-a-session" not in answer.body.decode() and "soon" not in answer.body.decode()
        if status == 405:
            assert answer.headers["allow"]
    # the session survived all of it
    assert (await http.post(key, {"type": "ping"})).status == 200


async def test_body_over_the_limit_is_413(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__max_message_bytes=2048
    ) as bridge:
        http = Transport(bridge.server.port)
        key = await http.open()
        big = {**SAY, "text": "x" * 3000}
        answer = await http.post(key, big)
        assert answer.status == 413
        assert answer.json() == error("bad_request", "request body too large")
        assert (await http.post(key, {"type": "ping"})).status == 200


async def test_two_sessions_at_once(http: Transport) -> None:
    first, second = await http.open(), await http.open()
    await http.post(first, SMITH)
    unknown = await http.post(second, SAY)  # NPCs are defined per session
    assert unknown.status == 422 and unknown.json()["code"] == "unknown_npc"
    await http.post(second, SMITH)
    a, b = await asyncio.gather(
        http.post(first, {**SAY, "text": "[[reply:first one]]"}, "?wait=10&merge=1"),
        http.post(second, {**SAY, "text": "[[reply:second one]]"}, "?wait=10&merge=1"),
    )
    assert a.json()["messages"][-1]["text"] == "first one"
    assert b.json()["messages"][-1]["text"] == "second one"
    polled = (await http.poll(second, "?cursor=0")).json()["messages"]
    assert not any(m.get("text") == "first one" for m in polled)


async def test_per_ip_session_cap(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__http_sessions_per_ip=2
    ) as bridge:
        http = Transport(bridge.server.port)
        first = await http.open()
        await http.open()
        refused = await http.call("POST", "/v1/sessions", HELLO)
        assert refused.status == 429 and refused.json()["code"] == "rate_limited"
        assert refused.headers["retry-after"] == "1"
        await http.call("DELETE", f"/v1/sessions/{first}")
        await http.open()


async def test_plugins_and_features_answer_over_http(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    plugins = ("tests.sample_plugins:PickModel", "tests.sample_plugins:SlowHandler")
    async with await start_bridge(fake_upstream, tmp_path, plugins=plugins) as bridge:
        http = Transport(bridge.server.port)
        key = await http.open()
        echo = await http.post(key, {"type": "x.echo", "id": "e", "value": 3}, "?wait=5")
        assert echo.json()["messages"] == [{"type": "x.echo", "id": "e", "value": 3}]
        refused = await http.post(key, {"type": "x.refuse", "id": "r"}, "?wait=5")
        assert refused.status == 400 and refused.json()["message"] == "field 'value': not today"
        crashed = await http.post(key, {"type": "x.crash", "id": "c"}, "?wait=5")
        assert crashed.json()["messages"] == [
            {"type": "error", "code": "internal", "id": "c", "message": "internal error",
             "retryable": True}
        ]  # fmt: skip
        assert b"plugin bug" not in crashed.body
        # a handler that works for a while: the wait ends when it answered
        waiting = asyncio.create_task(http.post(key, {"type": "x.wait", "id": "w"}, "?wait=10"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        plugin = bridge.app.plugins.get_plugin("tests.sample_plugins:SlowHandler")
        plugin.release.set()
        assert (await waiting).json()["messages"] == [{"type": "x.wait", "id": "w"}]
        # the builtin features: memory and quests
        lost_hammer = {
            "title": "Lost Hammer",
            "description": "Brom dropped his hammer by the well.",
            "objectives": ["Find the hammer by the well"],
            "rewards": ["20 gold"],
        }
        bridge.fake.script(Reply(json=lost_hammer))
        await http.post(key, SMITH)
        added = await http.post(
            key,
            {"type": "memory.add", "id": "m", "npc": "smith", "player": "p1", "text": "t"},
            "?wait=5",
        )
        assert added.json()["messages"] == [{"type": "ok", "id": "m"}]
        quest = await http.post(
            key,
            {"type": "quest.generate", "id": "q", "theme": "a lost hammer", "difficulty": "easy"},
            "?wait=10",
        )
        assert quest.status == 200, quest.body
        assert [m["type"] for m in quest.json()["messages"]] == ["quest"]


async def test_a_body_that_does_not_arrive_in_time_is_408(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__http_request_timeout_s=0.3
    ) as bridge:
        port = bridge.server.port
        key = await Transport(port).open()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /v1/sessions/{key}/messages HTTP/1.1\r\nHost: x\r\n"
            'Content-Length: 40\r\n\r\n{"type":'.encode()
        )
        async with asyncio.timeout(5):
            received = await reader.read()  # the server answers, then closes
        writer.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert json.loads(body) == {
            "type": "error", "code": "bad_request", "message": "request timeout",
            "retryable": False,
        }  # fmt: skip


async def test_origins_follow_the_websocket_rule(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__allowed_origins=["https://game.example"]
    ) as bridge:
        http = Transport(bridge.server.port)
        await http.open()  # no Origin: a game server, a mod
        await http.open(Origin="https://game.example")
        refused = await http.call("POST", "/v1/sessions", HELLO, {"Origin": "https://evil.example"})
        assert refused.status == 403 and refused.json() == error(
            "bad_request", "this origin is not allowed"
        )
        assert len(bridge.server.http_transport.sessions) == 2


async def test_voice_over_http_carries_bytes_as_base64(bridge: Bridge, http: Transport) -> None:
    """``speech.audio`` arrives as base64 in JSON (bin in msgpack); ``reply.audio`` goes out
    the same way; audio that is not base64 is refused naming the field."""
    import base64

    from tests.voice_helpers import SMITH as VOICED
    from tests.voice_helpers import speech_wav

    bridge.fake.audio.script_transcripts("Fix my sword? [[reply:Aye, lad.]]")
    key = await http.open()
    await http.post(key, {**SMITH, "persona": VOICED})
    wav = speech_wav(0.5)
    speech = {"type": "speech", "id": "s", "npc": "smith", "player": "p1", "format": "wav"}
    answer = await http.post(
        key, {**speech, "audio": base64.b64encode(wav).decode(), "voice": True}, "?wait=20"
    )
    assert answer.status == 200, answer.body
    messages = answer.json()["messages"]
    assert messages[0] == {
        "type": "transcript", "id": "s", "npc": "smith", "text": "Fix my sword? [[reply:Aye, lad.]]"
    }  # fmt: skip
    audio = [m for m in messages if m["type"] == "reply.audio"]
    assert audio and messages[-1]["type"] == "reply.end"
    pcm = base64.b64decode(audio[0]["audio"], validate=True)
    assert pcm and len(pcm) % 2 == 0  # 16-bit samples
    assert len(base64.b64decode(audio[0]["mouth"], validate=True)) >= 1
    refused = await http.post(key, {**speech, "id": "t", "audio": "not base64!"})
    assert refused.status == 400
    assert refused.json()["message"] == "speech: field 'audio': not base64"
    # msgpack: the same bytes as bin, both ways
    bridge.fake.audio.script_transcripts("[[reply:Hm.]]")
    packed = await http.post(
        key, {**speech, "id": "u", "audio": wav, "voice": True}, "?wait=20", msgpack_body=True
    )
    frames = decode_body(packed)["messages"]
    assert any(type(f.get("audio")) is bytes for f in frames if f["type"] == "reply.audio")
