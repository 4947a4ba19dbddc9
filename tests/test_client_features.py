"""The Python client's helpers for memory, quests, barks and scenes, against a real server."""

from __future__ import annotations

from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply


async def test_memory_helpers(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.memory_add(
            "blacksmith", "the player stole the sword", player="p1", importance=8
        )
        items = await client.memory_query("blacksmith", "p1", "sword")
        assert items and items[0]["text"] == "the player stole the sword"
        assert items[0]["importance"] == 8
        assert await client.memory_forget("p1", npc="blacksmith") >= 1
        assert await client.memory_query("blacksmith", "p1", "sword") == []


async def test_quest_and_barks_helpers(bridge: Bridge) -> None:
    bridge.fake.script(
        Reply(
            json={
                "title": "The Deep Forge",
                "description": "Something hammers in the closed mine at night.",
                "objectives": ["Enter the mine"],
                "rewards": ["30 gold"],
            }
        )
    )
    async with await bridge.client() as client:
        quest = await client.generate_quest("a haunted mine", "easy", npc="blacksmith")
        assert quest["title"] == "The Deep Forge" and quest["objectives"] == ["Enter the mine"]
        results = await client.generate_barks(["blacksmith", {"npc": "mage"}, "nobody"])
        assert [r["npc"] for r in results] == ["blacksmith", "mage", "nobody"]
        assert results[0]["text"] and results[1]["text"]
        assert results[2]["error"]["code"] == "unknown_npc"


async def test_scene_helpers_stream_each_speaker(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.scene_start("forge", ["blacksmith", "mage"], "p1", max_replies=2)
        exchange = await client.scene_say("forge", "Aelindra, [[reply:Ask Brom.]] what now?")
        speakers = []
        async for reply in exchange:
            text = await reply.text()
            assert text
            speakers.append(reply.start["npc"] if reply.start else None)
        assert speakers[0] == "mage"
        assert exchange.done is not None and exchange.done["stopped"] in ("quiet", "bound")
        assert len(exchange.replies) == len(exchange.done["replies"]) <= 2
        await client.scene_update("end", "forge")
