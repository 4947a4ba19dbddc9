"""Every bad input named in the protocol contract gets the contract's answer over a real socket,
and one client's bad input never disturbs another client's stream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from npcbridge.client import Client, NpcBridgeError
from npcbridge.protocol import encode, unpack
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

HELLO = {"type": "hello", "protocol": 1, "client": "test"}


async def raw_session(bridge: Bridge, hello: dict[str, Any] | None = HELLO) -> ClientConnection:
    ws = await connect(bridge.url, max_size=None)
    if hello is not None:
        await ws.send(encode(hello))
        welcome = unpack(await ws.recv())
        assert welcome["type"] == "welcome", welcome
    return ws


async def answer(ws: ClientConnection, data: bytes | str) -> dict[str, Any]:
    await ws.send(data)
    return unpack(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]


async def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code


@pytest.mark.parametrize(
    ("data", "with_id"),
    [
        ("a text frame", False),
        (b"\xc1", False),  # not msgpack
        (b"\x92\x01", False),  # truncated
        (msgpack.packb([1, 2]), False),  # not a map
        (msgpack.packb({"id": 7, "npc": "x"}), True),  # no type
        (msgpack.packb({"id": 7, "type": 5}), True),  # type not a string
        (msgpack.packb({"id": 7, "type": "say", "npc": "x"}), True),  # missing fields
        (msgpack.packb({"id": 7, "type": "say", "npc": "x", "player": 1, "text": "hi"}), True),
        (
            msgpack.packb(
                {"id": 7, "type": "memory.add", "npc": "x", "text": "t", "importance": 11}
            ),
            True,
        ),
    ],
)
async def test_malformed_messages_answer_bad_request_and_keep_connection(
    bridge: Bridge, data: bytes | str, with_id: bool
) -> None:
    ws = await raw_session(bridge)
    reply = await answer(ws, data)
    assert reply["type"] == "error" and reply["code"] == "bad_request"
    assert reply["retryable"] is False
    assert (reply.get("id") == 7) if with_id else ("id" not in reply)
    assert (await answer(ws, encode({"type": "ping", "id": 1})))["type"] == "pong"
    await ws.close()


async def test_error_message_names_the_field_without_echoing_values(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    secret = "x" * 50 + "SECRETVALUE"
    bad = {"type": "say", "id": 1, "npc": "x", "player": 5, "text": secret}
    reply = await answer(ws, msgpack.packb(bad))
    assert "player" in reply["message"] and "SECRETVALUE" not in reply["message"]
    await ws.close()


async def test_more_than_ten_bad_messages_in_a_row_close_1008(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    for _ in range(10):
        assert (await answer(ws, b"\xc1"))["code"] == "bad_request"
    await ws.send(b"\xc1")
    assert unpack(await ws.recv())["code"] == "bad_request"
    assert await closed_with(ws) == 1008


async def test_good_message_resets_bad_count(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    for _ in range(3):
        for _ in range(8):
            assert (await answer(ws, b"\xc1"))["code"] == "bad_request"
        assert (await answer(ws, encode({"type": "ping"})))["type"] == "pong"
    await ws.close()


async def test_oversize_message_closes_1009(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    await ws.send(encode({"type": "say", "id": 1, "npc": "x", "player": "p", "text": "a" * 70000}))
    assert await closed_with(ws) == 1009


async def test_first_message_not_hello_closes_1008(bridge: Bridge) -> None:
    ws = await raw_session(bridge, hello=None)
    reply = await answer(ws, encode({"type": "ping", "id": 3}))
    assert reply["code"] == "bad_request" and reply["id"] == 3
    assert await closed_with(ws) == 1008


async def test_text_frame_first_closes_1008(bridge: Bridge) -> None:
    ws = await raw_session(bridge, hello=None)
    assert (await answer(ws, "hello"))["code"] == "bad_request"
    assert await closed_with(ws) == 1008


async def test_unsupported_protocol_closes_4002(bridge: Bridge) -> None:
    ws = await raw_session(bridge, hello=None)
    reply = await answer(ws, encode({"type": "hello", "protocol": 99, "client": "t"}))
    assert reply["code"] == "unsupported_protocol" and "1" in reply["message"]
    assert await closed_with(ws) == 4002


async def test_second_hello_is_bad_request(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    assert (await answer(ws, encode(HELLO)))["code"] == "bad_request"
    await ws.close()


async def test_unknown_type_and_unclaimed_extension(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    reply = await answer(ws, encode({"type": "dance", "id": 4}))
    assert reply == {**reply, "code": "unknown_type", "id": 4}
    reply = await answer(ws, encode({"type": "x.dance", "id": 5}))
    assert reply == {**reply, "code": "unknown_type", "id": 5}
    await ws.close()


async def test_unknown_npc(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        reply = await client.say("nobody", "p1", "hi")
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
        assert info.value.code == "unknown_npc"
    assert bridge.fake.requests == []


async def test_bad_npc_define(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        for frame in (
            {"type": "npc.define", "npc": "a"},
            {"type": "npc.define", "npc": "a", "card": {"data": {}}},
            {
                "type": "npc.define",
                "npc": "a",
                "persona": {"name": "A", "actions": [{"name": "x", "parameters": {"type": 5}}]},
            },
        ):
            with pytest.raises(NpcBridgeError) as info:
                await client.request(frame)
            assert info.value.code == "bad_request"


async def test_too_many_in_flight_and_duplicate_id(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__max_in_flight=2) as b:
        async with await b.client() as client:
            assert client.welcome["limits"]["max_in_flight"] == 2
            slow = [await client.say("blacksmith", "p1", "[[slow]]", id=f"s{i}") for i in range(2)]
            third = await client.say("mage", "p1", "hi")
            with pytest.raises(NpcBridgeError) as info:
                await third.text()
            assert info.value.code == "too_many_in_flight" and info.value.retryable
            for reply in slow:
                await reply.cancel()
                await reply.text()


async def test_duplicate_in_flight_id_is_bad_request(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    say = {"type": "say", "id": "same", "npc": "blacksmith", "player": "p", "text": "[[slow]]"}
    await ws.send(encode(say))
    await ws.send(encode(say))
    frames = [unpack(await ws.recv()) for _ in range(2)]
    errors = [f for f in frames if f["type"] == "error"]
    assert errors and errors[0]["code"] == "bad_request" and errors[0]["id"] == "same"
    await ws.send(encode({"type": "cancel", "id": "same"}))
    await ws.close()


async def test_cancel_unknown_id_is_bad_request(bridge: Bridge) -> None:
    ws = await raw_session(bridge)
    reply = await answer(ws, encode({"type": "cancel", "id": "never"}))
    assert reply["code"] == "bad_request" and reply["id"] == "never"
    await ws.close()


async def test_text_over_max_length(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        reply = await client.say("blacksmith", "p", "a" * 4001)
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
        assert info.value.code == "bad_request" and "text" in info.value.message


async def test_auth_required_and_checked(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__token="letmein") as b:
        with pytest.raises(NpcBridgeError) as info:
            await Client.connect(b.url, token="wrong")
        assert info.value.code == "unauthorized"
        ws = await raw_session(b, hello=None)
        assert (await answer(ws, encode(HELLO)))["code"] == "unauthorized"
        assert await closed_with(ws) == 4001
        async with await Client.connect(b.url, token="letmein") as client:
            assert client.welcome["type"] == "welcome"


async def test_no_auth_when_no_token(bridge: Bridge) -> None:
    async with await Client.connect(bridge.url, token="anything") as client:
        assert client.welcome["type"] == "welcome"


async def test_bad_client_does_not_disturb_other_stream(bridge: Bridge) -> None:
    bridge.fake.tokens_per_s = 200
    async with await bridge.client() as good:
        reply = await good.say("blacksmith", "p1", "[[words:30]]")
        bad = await raw_session(bridge)
        for _ in range(11):
            await bad.send(b"\xc1")
        await bad.send(
            encode({"type": "say", "id": 1, "npc": "x", "player": "p", "text": "a" * 70000})
        )
        text = await reply.text()
        assert len(text.split()) == 30 and reply.end["finish"] == "stop"
        await bad.close()
