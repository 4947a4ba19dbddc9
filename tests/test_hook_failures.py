"""A request always ends with an answer, whatever a hook raises or returns; wrongly typed
persona and request fields are refused at the door with ``bad_request`` naming the field."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from npcbridge import hookimpl
from npcbridge.protocol import encode, unpack
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

HELLO = {"type": "hello", "protocol": 1, "client": "test"}


async def session(url: str) -> ClientConnection:
    ws = await connect(url, max_size=None)
    await ws.send(encode(HELLO))
    assert unpack(await ws.recv())["type"] == "welcome"
    return ws


async def frames_until_error(ws: ClientConnection, request_id: Any) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = unpack(await asyncio.wait_for(ws.recv(), 5))
        frames.append(frame)
        if frame["type"] == "error" and frame.get("id") == request_id:
            return frames


class PersonaRaises:
    @hookimpl
    def npcbridge_persona(self, turn: Any) -> Any:
        raise ValueError("persona plugin broke")


class PersonaReturnsInt:
    @hookimpl
    def npcbridge_persona(self, turn: Any) -> Any:
        return 5


class RecallRaises:
    @hookimpl
    async def npcbridge_recall(self, turn: Any) -> Any:
        raise KeyError("recall")


class RecallReturnsText:
    @hookimpl
    def npcbridge_recall(self, turn: Any) -> Any:
        return "not a list of messages"


class SelectRaises:
    @hookimpl(tryfirst=True)
    def npcbridge_select_model(self, turn: Any, catalog: Any) -> Any:
        raise RuntimeError("select")


class SelectReturnsInt:
    @hookimpl(tryfirst=True)
    def npcbridge_select_model(self, turn: Any, catalog: Any) -> Any:
        return 42


class BeforeRequestRaises:
    @hookimpl
    def npcbridge_before_request(self, turn: Any) -> Any:
        raise ZeroDivisionError


class TransformRaises:
    @hookimpl
    def npcbridge_transform_delta(self, turn: Any, text: str) -> Any:
        raise ValueError("transform")


class PostProcessRaises:
    @hookimpl
    def npcbridge_post_process(self, turn: Any, text: str, finish: str) -> Any:
        raise ValueError("post")


class PostProcessReturnsInt:
    @hookimpl
    def npcbridge_post_process(self, turn: Any, text: str, finish: str) -> Any:
        return 7


BEFORE_ANY_DELTA = ["PersonaRaises", "PersonaReturnsInt", "RecallRaises", "RecallReturnsText"]
BEFORE_ANY_DELTA += ["SelectRaises", "SelectReturnsInt", "BeforeRequestRaises"]
#: fails on the first delta, after reply.start: the error alone ends the reply
BEFORE_THE_FIRST_DELTA = ["TransformRaises"]
AFTER_DELTAS = ["PostProcessRaises", "PostProcessReturnsInt"]
HOOK = {
    "Persona": "npcbridge_persona",
    "Recall": "npcbridge_recall",
    "Select": "npcbridge_select_model",
    "BeforeRequest": "npcbridge_before_request",
    "Transform": "npcbridge_transform_delta",
    "PostProcess": "npcbridge_post_process",
}


def _hook_of(plugin: str) -> str:
    return next(hook for prefix, hook in HOOK.items() if plugin.startswith(prefix))


@pytest.mark.parametrize("plugin", BEFORE_ANY_DELTA + BEFORE_THE_FIRST_DELTA + AFTER_DELTAS)
async def test_a_failing_hook_still_ends_the_request(
    fake_upstream: FakeUpstream,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    plugin: str,
) -> None:
    caplog.set_level(logging.ERROR, logger="npcbridge")
    async with await start_bridge(fake_upstream, tmp_path, plugins=(f"{__name__}:{plugin}",)) as b:
        ws = await session(b.url)
        for request_id in (1, 2):
            say = {"type": "say", "id": request_id, "npc": "blacksmith", "player": "p"}
            await ws.send(encode({**say, "text": "[[reply:Aye, lad. Done.]]"}))
            frames = await frames_until_error(ws, request_id)
            error = frames[-1]
            assert error["code"] == "internal" and error["message"] == "internal error"
            types = [f["type"] for f in frames]
            if plugin in AFTER_DELTAS:
                assert types[0] == "reply.start" and "reply.end" in types
                end = next(f for f in frames if f["type"] == "reply.end")
                assert end["finish"] == "error" and end["text"] == "Aye, lad. Done."
            elif plugin in BEFORE_THE_FIRST_DELTA:
                assert types == ["reply.start", "error"]
            else:
                assert types == ["error"]
        # the connection still serves requests
        await ws.send(encode({"type": "ping", "id": 3}))
        assert unpack(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong", "id": 3}
        await ws.close()
    records = [r for r in caplog.records if r.name.startswith("npcbridge") and "request" in r.msg]
    assert len(records) == 2, [r.getMessage() for r in caplog.records]
    first, second = (r.getMessage() for r in records)
    assert "request 1 " in first and _hook_of(plugin) in first
    if "Raises" in plugin:
        assert plugin in first  # the plugin's registered name
    # the traceback is logged once, the repeat is one line
    assert records[0].exc_info is not None and records[1].exc_info is None
    assert "request 2 " in second


class TransformReturnsInt:
    @hookimpl
    def npcbridge_transform_delta(self, turn: Any, text: str) -> Any:
        return 5


class TransformUsesText:
    """Called after the wrong answer in the chain: it fails on the int it receives."""

    @hookimpl
    def npcbridge_transform_delta(self, turn: Any, text: str) -> Any:
        return text.upper()


class PostProcessUsesText:
    """Called after the wrong answer in the chain: it fails on the int it receives."""

    @hookimpl
    def npcbridge_post_process(self, turn: Any, text: str, finish: str) -> Any:
        return text.upper()


@pytest.mark.parametrize(
    ("wrong", "next_in_chain"),
    [
        ("TransformReturnsInt", "TransformUsesText"),
        ("PostProcessReturnsInt", "PostProcessUsesText"),
    ],
)
async def test_a_wrong_chain_answer_is_blamed_on_the_plugin_that_gave_it(
    fake_upstream: FakeUpstream,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    wrong: str,
    next_in_chain: str,
) -> None:
    caplog.set_level(logging.ERROR, logger="npcbridge")
    # registered later, called first: the wrong answer reaches the other plugin
    plugins = (f"{__name__}:{next_in_chain}", f"{__name__}:{wrong}")
    async with await start_bridge(fake_upstream, tmp_path, plugins=plugins) as b:
        ws = await session(b.url)
        say = {"type": "say", "id": 1, "npc": "blacksmith", "player": "p", "text": "[[reply:Aye.]]"}
        await ws.send(encode(say))
        error = (await frames_until_error(ws, 1))[-1]
        assert error["code"] == "internal" and error["message"] == "internal error"
        await ws.close()
    records = [r for r in caplog.records if r.name.startswith("npcbridge") and "request" in r.msg]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    line = records[0].getMessage()
    assert _hook_of(wrong) in line and f"of plugin {__name__}:{wrong}" in line, line
    assert next_in_chain not in line, line


async def test_persona_fields_are_checked_at_the_door(bridge: Bridge) -> None:
    ws = await session(bridge.url)
    for field, value in (
        ("budget_usd_per_day", "lots"),
        ("latency_budget_ms", "soon"),
        ("budget_usd_per_day", -1),
        ("tier", "huge"),
        ("quality", "yes"),
        ("fallbacks", "llama"),
        ("system_prompt", 5),
        ("card", {"data": b"\x00"}),
    ):
        persona = {"name": "Brom", field: value}
        await ws.send(encode({"type": "npc.define", "id": 1, "npc": "b", "persona": persona}))
        reply = unpack(await asyncio.wait_for(ws.recv(), 5))
        assert reply["code"] == "bad_request" and reply["refused"] == "npc.define"
        assert f"field 'persona.{field}'" in reply["message"], reply
    await ws.close()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "quest.generate", "id": 1, "theme": "mine", "context": {"gold": b"\x01"}},
        {"type": "say", "id": 1, "npc": "blacksmith", "player": "p", "text": "hi",
         "context": {"items": [1, {"k": b"x"}]}},
        {"type": "barks.generate", "id": 1, "npcs": [{"npc": "blacksmith", "context": {
            "x": b""}}]},
        {"type": "scene.start", "id": 1, "scene": "s", "player": "p", "npcs": ["mage"],
         "context": {"x": b""}},
    ],
)  # fmt: skip
async def test_binary_inside_a_context_is_refused(bridge: Bridge, frame: dict[str, Any]) -> None:
    ws = await session(bridge.url)
    await ws.send(encode(frame))
    reply = unpack(await asyncio.wait_for(ws.recv(), 5))
    assert reply["code"] == "bad_request" and reply["id"] == 1
    assert "context'" in reply["message"] and reply["refused"] == frame["type"]
    await ws.close()


class ReplyFieldsRaises:
    @hookimpl
    def npcbridge_reply_fields(self, turn: Any, result: Any) -> Any:
        raise ValueError("fields plugin broke")


class ReplyFieldsReturnsList:
    @hookimpl
    def npcbridge_reply_fields(self, turn: Any, result: Any) -> Any:
        return ["mood"]


class ReplyFieldsUnencodable:
    @hookimpl
    def npcbridge_reply_fields(self, turn: Any, result: Any) -> Any:
        return {"mood": object()}


class ReplyFieldsGood:
    """A well-behaved plugin beside the broken one: its field still arrives."""

    @hookimpl
    def npcbridge_reply_fields(self, turn: Any, result: Any) -> Any:
        return {"kept": "yes"}


class AfterTurnRecords:
    done: list[tuple[Any, str]] = []

    @hookimpl
    def npcbridge_after_turn(self, turn: Any, result: Any) -> None:
        AfterTurnRecords.done.append((turn.request_id, result.finish))


@pytest.mark.parametrize(
    "plugin", ["ReplyFieldsRaises", "ReplyFieldsReturnsList", "ReplyFieldsUnencodable"]
)
async def test_failing_reply_fields_are_dropped_and_the_reply_ends(
    fake_upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture, plugin: str
) -> None:
    caplog.set_level(logging.ERROR, logger="npcbridge")
    AfterTurnRecords.done.clear()
    plugins = tuple(f"{__name__}:{p}" for p in ("ReplyFieldsGood", plugin, "AfterTurnRecords"))
    async with await start_bridge(fake_upstream, tmp_path, plugins=plugins) as b:
        ws = await session(b.url)
        for request_id in (1, 2):
            say = {"type": "say", "id": request_id, "npc": "blacksmith", "player": "p"}
            await ws.send(encode({**say, "text": "[[reply:Aye, lad.]]"}))
            frames = []
            while not frames or frames[-1]["type"] != "reply.end":
                frames.append(unpack(await asyncio.wait_for(ws.recv(), 5)))
            end = frames[-1]
            assert end["finish"] == "stop" and end["text"] == "Aye, lad."
            assert end["kept"] == "yes" and "mood" not in end
        # no error follows the reply: the next frame is the pong
        await ws.send(encode({"type": "ping", "id": 3}))
        assert unpack(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong", "id": 3}
        await ws.close()
        for _ in range(100):
            if len(AfterTurnRecords.done) == 2:
                break
            await asyncio.sleep(0.01)
    assert AfterTurnRecords.done == [(1, "stop"), (2, "stop")]
    records = [r for r in caplog.records if r.name.startswith("npcbridge")]
    assert len(records) == 2, [r.getMessage() for r in caplog.records]
    first = records[0].getMessage()
    assert "request 1 " in first and "npcbridge_reply_fields" in first and plugin in first
    assert records[0].exc_info is not None and records[1].exc_info is None


async def test_a_scene_reply_with_failing_reply_fields_still_ends(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    plugins = (f"{__name__}:ReplyFieldsRaises",)
    async with await start_bridge(fake_upstream, tmp_path, plugins=plugins) as b:
        ws = await session(b.url)
        start = {"type": "scene.start", "id": 1, "scene": "s", "player": "p", "npcs": ["mage"]}
        await ws.send(encode(start))
        assert unpack(await asyncio.wait_for(ws.recv(), 5))["type"] == "ok"
        say = {"type": "scene.say", "id": 2, "scene": "s", "text": "[[reply:Hm.]]"}
        await ws.send(encode({**say, "max_replies": 1}))
        frames = []
        while not frames or frames[-1]["type"] != "scene.done":
            frames.append(unpack(await asyncio.wait_for(ws.recv(), 5)))
        await ws.close()
    end = next(f for f in frames if f["type"] == "reply.end")
    assert end["id"] == "2/1" and end["finish"] == "stop" and end["text"] == "Hm."
    assert not [f for f in frames if f["type"] == "error"]
    assert frames[-1]["replies"] == [{"id": "2/1", "npc": "mage", "finish": "stop"}]
