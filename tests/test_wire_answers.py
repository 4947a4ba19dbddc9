"""What the server answers on the wire, frame by frame: refusals marked with ``refused``, errors
that never repeat what was sent, request id limits, ``stream: false``, and the answers of
``memory.add``, ``scene.interrupt``, ``scene.end`` and ``unsupported_protocol``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from ws_helpers import HELLO, recv

from npcbridge.protocol import encode, unpack
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

SAY = {"type": "say", "npc": "blacksmith", "player": "p"}


async def session(bridge: Bridge) -> ClientConnection:
    ws = await connect(bridge.url, max_size=None)
    await ws.send(encode(HELLO))
    assert unpack(await ws.recv())["type"] == "welcome"
    return ws


async def answer(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(encode(frame))
    return await recv(ws)


async def until_end(ws: ClientConnection, request_id: Any) -> list[dict[str, Any]]:
    """Frames up to the reply.end (or error) of ``request_id``; other ids' frames included."""
    frames = []
    while True:
        frame = await recv(ws)
        frames.append(frame)
        if frame.get("id") == request_id and frame["type"] in ("reply.end", "error"):
            return frames


# ---------------------------------------------------------------- errors never echo values


async def test_a_huge_type_or_id_is_never_repeated(bridge: Bridge) -> None:
    ws = await session(bridge)
    huge_type = "t" * 60 * 1024
    reply = await answer(ws, {"type": huge_type, "id": 1})
    assert reply["code"] == "unknown_type" and reply["id"] == 1
    assert len(encode(reply)) < 200 and "refused" not in reply  # too long to repeat
    reply = await answer(ws, {"type": "cancel", "id": "i" * 50_000})
    assert reply["code"] == "bad_request" and "'id'" in reply["message"]
    assert "id" not in reply and len(encode(reply)) < 300
    # neither does a validation error repeat a game's own map keys or values
    key = "k" * 1000
    reply = await answer(ws, {**SAY, "id": 2, "text": "hi", "context": {key: b"\x00" * 100}})
    assert reply["code"] == "bad_request" and "'context'" in reply["message"]
    assert key not in reply["message"] and len(reply["message"]) < 200
    await ws.close()


async def test_request_id_limits(bridge: Bridge) -> None:
    ws = await session(bridge)
    for bad in ("x" * 129, "€" * 43, 2**63, 2**64 - 1):  # 129 bytes, 129 bytes, > int64
        reply = await answer(ws, {"type": "ping", "id": bad})
        assert reply["type"] == "error" and reply["code"] == "bad_request", bad
        assert "field 'id'" in reply["message"] and "id" not in reply
        assert reply["refused"] == "ping"
    for good in ("x" * 128, "€" * 42 + "xx", 2**63 - 1, -(2**63)):
        assert await answer(ws, {"type": "ping", "id": good}) == {"type": "pong", "id": good}
    await ws.close()


# ---------------------------------------------------------------- refusals are marked


async def test_a_duplicate_say_is_refused_without_touching_the_live_reply(
    bridge: Bridge,
) -> None:
    ws = await session(bridge)
    await ws.send(encode({**SAY, "id": "t-1", "text": "[[slow]]"}))
    assert (await recv(ws))["type"] == "reply.start"
    await ws.send(encode({**SAY, "id": "t-1", "text": "again"}))
    frames = []
    while not any(f["type"] == "error" for f in frames):
        frames.append(await recv(ws))
    error = next(f for f in frames if f["type"] == "error")
    assert error["id"] == "t-1" and error["code"] == "bad_request"
    assert error["refused"] == "say"
    # the live reply goes on
    await ws.send(encode({"type": "cancel", "id": "t-1"}))
    end = (await until_end(ws, "t-1"))[-1]
    assert end["type"] == "reply.end" and end["finish"] == "cancelled"
    await ws.close()


async def test_every_refusal_names_the_refused_type(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__max_in_flight=1) as b:
        ws = await session(b)
        cases = [
            ({"type": "cancel", "id": "never"}, "bad_request"),
            ({**SAY, "id": 3, "npc": "nobody", "text": "hi"}, "unknown_npc"),
            ({**SAY, "id": 4, "text": 5}, "bad_request"),
            ({**SAY, "id": 5, "text": "a" * 4001}, "bad_request"),
            ({"type": "dance", "id": 6}, "unknown_type"),
            ({"type": "x.dance", "id": 7}, "unknown_type"),
            ({"type": "memory.add", "id": 8, "npc": "nobody", "text": "t"}, "unknown_npc"),
            ({"type": "npc.define", "id": 9, "npc": "a", "persona": {"name": 5}}, "bad_request"),
        ]
        for frame, code in cases:
            reply = await answer(ws, frame)
            assert reply["type"] == "error" and reply["code"] == code, (frame, reply)
            assert reply["id"] == frame["id"] and reply["refused"] == frame["type"], reply
        # beyond max_in_flight
        await ws.send(encode({**SAY, "id": "live", "text": "[[slow]]"}))
        assert (await recv(ws))["type"] == "reply.start"
        reply = await answer(ws, {**SAY, "id": "second", "text": "hi"})
        assert reply["code"] == "too_many_in_flight" and reply["refused"] == "say"
        await ws.close()


async def test_the_error_ending_a_live_reply_is_not_a_refusal(bridge: Bridge) -> None:
    ws = await session(bridge)
    await ws.send(encode({**SAY, "id": 1, "text": "[[reply:Aye lad.]] [[stream_error]]"}))
    frames = await until_end(ws, 1)
    assert frames[0]["type"] == "reply.start"
    while frames[-1]["type"] != "error":
        frames.append(await recv(ws))
    assert "refused" not in frames[-1] and frames[-1]["id"] == 1
    await ws.close()


async def test_a_cancel_naming_a_scene_reply_is_refused(bridge: Bridge) -> None:
    ws = await session(bridge)
    start = {"type": "scene.start", "id": 1, "scene": "s", "player": "p"}
    assert (await answer(ws, {**start, "npcs": ["blacksmith", "mage"]}))["type"] == "ok"
    await ws.send(encode({"type": "scene.say", "id": "s-1", "scene": "s", "text": "[[slow]]"}))
    first = await recv(ws)
    assert first["type"] == "reply.start" and first["id"] == "s-1/1"
    await ws.send(encode({"type": "cancel", "id": "s-1/1"}))
    while (frame := await recv(ws))["type"] != "error":
        assert frame["id"] == "s-1/1" and frame["type"] == "reply.delta"
    assert frame["id"] == "s-1/1" and frame["refused"] == "cancel"
    assert frame["code"] == "bad_request"
    # scene.interrupt and scene.end answer ok
    await ws.send(encode({"type": "scene.interrupt", "id": 2, "scene": "s"}))
    while (frame := await recv(ws)).get("id") != 2:
        pass
    assert frame == {"type": "ok", "id": 2}
    while (frame := await recv(ws))["type"] == "reply.delta":
        pass
    assert frame["type"] == "reply.end" and frame["finish"] == "cancelled"
    done = await recv(ws)
    assert done["type"] == "scene.done" and done["stopped"] == "interrupted"
    assert await answer(ws, {"type": "scene.end", "id": 3, "scene": "s"}) == {"type": "ok", "id": 3}
    await ws.close()


async def test_hello_refusals(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__token="letmein") as b:
        ws = await connect(b.url)
        reply = await answer(ws, {**HELLO, "protocol": 2**40, "token": "letmein"})
        assert reply["code"] == "unsupported_protocol" and reply["supported"] == [1]
        assert reply["refused"] == "hello" and str(2**40) not in reply["message"]
        ws = await connect(b.url)
        reply = await answer(ws, HELLO)
        assert reply["code"] == "unauthorized" and reply["refused"] == "hello"


# ---------------------------------------------------------------- answers


async def test_stream_false_sends_only_reply_end_with_its_emotes(bridge: Bridge) -> None:
    ws = await session(bridge)
    text = "[[reply:*wipes his hands* Aye, lad. It is done.]]"
    await ws.send(encode({**SAY, "id": 1, "text": text, "stream": False}))
    end = await recv(ws)
    assert end["type"] == "reply.end" and end["emotes"] == ["wipes his hands"]
    assert end["text"] == "Aye, lad. It is done."
    assert await answer(ws, {"type": "ping", "id": 2}) == {"type": "pong", "id": 2}
    await ws.close()
    # the Python client reads the whole text from that reply.end
    async with await bridge.client() as client:
        reply = await client.say("blacksmith", "p1", "[[words:5]]", stream=False)
        assert len((await reply.text()).split()) == 5
        assert not [f for f in reply.frames if f["type"] == "reply.delta"]


async def test_memory_add_answers_ok_for_a_known_npc(bridge: Bridge) -> None:
    ws = await session(bridge)
    add = {"type": "memory.add", "id": 1, "npc": "blacksmith", "player": "p", "text": "a fact"}
    assert await answer(ws, add) == {"type": "ok", "id": 1}
    reply = await answer(ws, {**add, "id": 2, "npc": "ghost"})
    assert reply["code"] == "unknown_npc" and reply["refused"] == "memory.add"
    await ws.close()
