"""Offline mode (no key): every announced feature works, with canned content that validates;
quest errors name the rule that failed and say whether asking again can help."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from npcbridge.client import NpcBridgeError
from npcbridge.features.quest.schema import DIFFICULTIES, validate_quest
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

SMITH = {"name": "Brom", "description": "A blacksmith, rough but kind."}
BAKER = {"name": "Mira", "description": "A baker with flour on her apron."}
FIELDS = {
    "xp": {"type": "integer", "minimum": 10, "maximum": 500},
    "region": {"enum": ["north", "south"]},
    "repeatable": {"type": "boolean"},
    "items": {"type": "array", "items": {"type": "string"}, "minItems": 1},
}


@pytest.fixture
async def offline(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Bridge]:
    """A server in offline mode (the fake upstream is never asked)."""
    async with await start_bridge(fake_upstream, tmp_path, upstream__offline=True) as b:
        yield b


async def test_offline_announces_only_features_that_answer(offline: Bridge) -> None:
    async with await offline.client() as client:
        features = client.welcome["features"]
        assert {"offline", "quest", "barks", "scenes"} <= set(features)
        assert client.welcome["models"] == ["offline"]
        reply = await client.say("blacksmith", "p1", "Hello smith")
        assert "Brom" in await reply.text() and reply.end["model"] == "offline"
        await client.define_npc("smith", SMITH)
        await client.define_npc("baker", BAKER)
        for difficulty in DIFFICULTIES:
            answer = await client.request(
                {
                    "type": "quest.generate",
                    "theme": "wolves at the old mill",
                    "difficulty": difficulty,
                    "npc": "smith",
                    "fields": FIELDS,
                }
            )
            assert answer["type"] == "quest" and answer["source"] == "offline"
            quest: dict[str, Any] = answer["quest"]
            core = {k: v for k, v in quest.items() if k not in ("difficulty", "giver")}
            assert validate_quest(core, difficulty, FIELDS) == core  # the same rules as a model's
            assert quest["giver"] == "smith" and "Brom" in quest["description"]
            assert "wolves at the old mill" in quest["title"]
        barks = await client.request(
            {"type": "barks.generate", "npcs": [{"npc": "smith"}, {"npc": "baker"}]}
        )
        texts = [r["text"] for r in barks["results"]]
        assert all(0 < len(t.split()) < 15 and "talking to you" not in t for t in texts), texts
        assert not any("emotes" in r for r in barks["results"])
        assert "Fresh bread! Still warm!" in texts or "bun" in texts[1] or "copper" in texts[1]
        await client.scene_start("market", ["smith", "baker"], "p1")
        exchange = await client.scene_say("market", "Mira, is the bread fresh today?")
        replies = [await reply.text() async for reply in exchange]
        assert replies and all("p1:" not in text for text in replies), replies
        assert "Mira, is the bread fresh today" in replies[0]
    assert offline.fake.requests == []


async def test_offline_quest_that_canned_values_cannot_fill_is_final(offline: Bridge) -> None:
    async with await offline.client() as client:
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {
                    "type": "quest.generate",
                    "theme": "a lost ring",
                    "fields": {"code": {"type": "string", "pattern": "^[0-9]{3}-SECRET$"}},
                }
            )
    error = info.value
    assert error.code == "upstream_error" and error.retryable is False
    assert "code" in str(error) and "'pattern'" in str(error)
    assert "SECRET" not in str(error)  # the schema the client sent is not echoed
