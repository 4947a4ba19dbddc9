"""Group scenes over a real socket: turn-taking, the bound, interrupts, add/remove."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scene_helpers import INNKEEPER

from npcbridge.client import Client, NpcBridgeError
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply


async def _start(client: Client, **extra: Any) -> None:
    await client.define_npc("innkeeper", INNKEEPER)
    answer = await client.request(
        {
            "type": "scene.start",
            "scene": "tavern",
            "player": "p1",
            "player_name": "Rowan",
            "npcs": ["blacksmith", "mage", "innkeeper"],
            **extra,
        }
    )
    assert answer["type"] == "ok"


async def _exchange(client: Client, request_id: str | int) -> list[dict[str, Any]]:
    """Frames of one scene exchange, up to and including its scene.done."""
    frames = []
    while True:
        frame = await asyncio.wait_for(client.unsolicited.get(), 10)
        frames.append(frame)
        if frame["type"] == "scene.done" and frame["id"] == request_id:
            return frames


def _replies(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["id"], f["npc"]) for f in frames if f["type"] == "reply.start"]


async def test_addressed_npc_answers_first_and_the_chain_stops_at_the_bound(
    bridge: Bridge,
) -> None:
    fake = bridge.fake
    fake.script(
        Reply(text="Haunted? Brom, tell the child what you heard."),
        Reply(text="Aye. Aelindra saw the lights herself."),
        Reply(text="Brom exaggerates, as always."),
        Reply(text="never used: the bound stops the chain first"),
    )
    async with await bridge.client() as client:
        assert "scenes" in client.welcome["features"]
        await _start(client, max_replies=3)
        await client.send(
            {
                "type": "scene.say",
                "id": "s-1",
                "scene": "tavern",
                "text": "Aelindra, is it haunted?",
            }
        )
        frames = await _exchange(client, "s-1")
    assert _replies(frames) == [("s-1/1", "mage"), ("s-1/2", "blacksmith"), ("s-1/3", "mage")]
    done = frames[-1]
    assert done["stopped"] == "bound"
    assert [r["id"] for r in done["replies"]] == ["s-1/1", "s-1/2", "s-1/3"]
    assert {r["finish"] for r in done["replies"]} == {"stop"}
    ends = [f for f in frames if f["type"] == "reply.end"]
    assert [e["text"] for e in ends] == [
        "Haunted? Brom, tell the child what you heard.",
        "Aye. Aelindra saw the lights herself.",
        "Brom exaggerates, as always.",
    ]
    assert all(e["scene"] == "tavern" and e["parent"] == "s-1" for e in ends)
    for reply_id, _ in _replies(frames):
        deltas = [f["text"] for f in frames if f["type"] == "reply.delta" and f["id"] == reply_id]
        assert "".join(deltas) == next(e["text"] for e in ends if e["id"] == reply_id)
    assert len(fake.requests) == 3
    # the second speaker saw the scene: who is present, the player's line, the mage's answer
    messages = fake.requests[1].body["messages"]
    assert "Aelindra" in messages[0]["content"] and "Rowan (the player)" in messages[0]["content"]
    assert messages[-2] == {"role": "user", "content": "Rowan: Aelindra, is it haunted?"}
    assert messages[-1]["content"].startswith("Aelindra: Haunted?")
    # the mage's own earlier line comes back to her as an assistant message
    assert {"role": "assistant", "content": "Haunted? Brom, tell the child what you heard."} in (
        fake.requests[2].body["messages"]
    )


async def test_quiet_when_nobody_is_addressed_or_relevant(bridge: Bridge) -> None:
    bridge.fake.script(Reply(text="Hmm."))
    async with await bridge.client() as client:
        await _start(client)
        await client.send(
            {"type": "scene.say", "id": 7, "scene": "tavern", "text": "Tilda, an ale please."}
        )
        frames = await _exchange(client, 7)
    assert _replies(frames) == [("7/1", "innkeeper")]
    assert frames[-1]["stopped"] == "quiet"


async def test_relevance_then_least_spoken(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client, max_replies=1)
        await client.send(
            {"type": "scene.say", "id": "a", "scene": "tavern", "text": "Any rumour about the ale?"}
        )
        assert _replies(await _exchange(client, "a")) == [("a/1", "innkeeper")]
        # nothing relevant: whoever spoke least (the blacksmith, first in scene order)
        await client.send({"type": "scene.say", "id": "b", "scene": "tavern", "text": "Hello!"})
        assert _replies(await _exchange(client, "b")) == [("b/1", "blacksmith")]
        await client.send({"type": "scene.say", "id": "c", "scene": "tavern", "text": "Hello!"})
        assert _replies(await _exchange(client, "c")) == [("c/1", "mage")]
        # "to" wins over everything
        await client.send(
            {"type": "scene.say", "id": "d", "scene": "tavern", "text": "Ale?", "to": "blacksmith"}
        )
        assert _replies(await _exchange(client, "d")) == [("d/1", "blacksmith")]


async def test_interrupt_stops_the_exchange(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client)
        await client.send(
            {"type": "scene.say", "id": "s", "scene": "tavern", "text": "Brom! [[slow]]"}
        )
        first = await asyncio.wait_for(client.unsolicited.get(), 5)
        assert first["type"] == "reply.start" and first["npc"] == "blacksmith"
        delta = await asyncio.wait_for(client.unsolicited.get(), 5)
        assert delta["type"] == "reply.delta" and delta["id"] == "s/1"
        ok = await client.request({"type": "scene.interrupt", "scene": "tavern"})
        assert ok["type"] == "ok"
        frames = await _exchange(client, "s")
        end = next(f for f in frames if f["type"] == "reply.end")
        assert end["finish"] == "cancelled" and end["id"] == "s/1"
        assert frames[-1]["stopped"] == "interrupted"
        assert frames[-1]["replies"] == [{"id": "s/1", "npc": "blacksmith", "finish": "cancelled"}]
        await bridge.fake.wait_disconnect(timeout=3)
        # the scene stays open
        await client.send({"type": "scene.say", "id": "t", "scene": "tavern", "text": "Tilda?"})
        assert _replies(await _exchange(client, "t"))[0] == ("t/1", "innkeeper")


async def test_new_line_from_the_player_interrupts_the_npcs(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client)
        await client.send(
            {"type": "scene.say", "id": 1, "scene": "tavern", "text": "Brom [[slow]]"}
        )
        assert (await asyncio.wait_for(client.unsolicited.get(), 5))["type"] == "reply.start"
        await client.send({"type": "scene.say", "id": 2, "scene": "tavern", "text": "Tilda?"})
        frames = await _exchange(client, 1)
        assert frames[-1]["stopped"] == "interrupted"
        frames = await _exchange(client, 2)
        assert _replies(frames)[0] == ("2/1", "innkeeper")


async def test_add_and_remove_npcs_while_the_scene_runs(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client)
        await client.define_npc("guard", {"name": "Captain Varn", "description": "The guard."})
        assert (await client.request({"type": "scene.add", "scene": "tavern", "npc": "guard"}))[
            "type"
        ] == "ok"
        await client.send(
            {"type": "scene.say", "id": "g", "scene": "tavern", "text": "Captain, any news?"}
        )
        assert _replies(await _exchange(client, "g"))[0] == ("g/1", "guard")
        # removing the NPC that is speaking cancels its reply; the exchange goes on
        await client.send(
            {"type": "scene.say", "id": "r", "scene": "tavern", "text": "Varn [[slow]]"}
        )
        assert (await asyncio.wait_for(client.unsolicited.get(), 5))["npc"] == "guard"
        await client.request({"type": "scene.remove", "scene": "tavern", "npc": "guard"})
        frames = await _exchange(client, "r")
        assert frames[-1]["replies"][0] == {"id": "r/1", "npc": "guard", "finish": "cancelled"}
        assert frames[-1]["stopped"] != "interrupted"
        with pytest.raises(NpcBridgeError) as info:
            await client.request({"type": "scene.remove", "scene": "tavern", "npc": "guard"})
        assert info.value.code == "bad_request"
        assert (await client.request({"type": "scene.end", "scene": "tavern"}))["type"] == "ok"
        with pytest.raises(NpcBridgeError):
            await client.request({"type": "scene.end", "scene": "tavern"})


async def test_scene_messages_are_validated_strictly(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        bad_starts = [
            {"scene": "x", "player": "p1", "npcs": []},
            {"scene": "x", "player": "p1", "npcs": ["mage", "mage"]},
            {"scene": "", "player": "p1", "npcs": ["mage"]},
            {"scene": "x", "player": "p1", "npcs": ["mage"], "max_replies": 0},
            {"scene": "x", "player": "p1", "npcs": ["mage"], "max_replies": "2"},
        ]
        for bad in bad_starts:
            with pytest.raises(NpcBridgeError) as info:
                await client.request({"type": "scene.start", **bad})
            assert info.value.code == "bad_request", bad
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {"type": "scene.start", "scene": "x", "player": "p1", "npcs": ["ghost"]}
            )
        assert info.value.code == "unknown_npc"
        for bad in (
            {"scene": "nope", "text": "hi"},
            {"scene": "x", "text": ""},
            {"scene": "x", "text": "hi", "to": 5},
        ):
            with pytest.raises(NpcBridgeError) as info:
                await client.request({"type": "scene.say", "id": "q", **bad})
            assert info.value.code == "bad_request"
        # the server's max_text_chars holds for scene lines as for say
        await client.scene_start("y", ["mage"], "p1")
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {"type": "scene.say", "id": "long", "scene": "y", "text": "a" * 4001}
            )
        assert info.value.code == "bad_request"
        assert "scene.say: field 'text': longer than 4000 characters" in info.value.message
    assert bridge.fake.requests == []


async def test_a_scene_without_npcs_is_quiet(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.request(
            {"type": "scene.start", "scene": "empty", "player": "p1", "npcs": ["mage"]}
        )
        await client.request({"type": "scene.remove", "scene": "empty", "npc": "mage"})
        await client.send({"type": "scene.say", "id": "e", "scene": "empty", "text": "Anyone?"})
        frames = await _exchange(client, "e")
    assert frames == [
        {"type": "scene.done", "id": "e", "scene": "empty", "replies": [], "stopped": "quiet"}
    ]
