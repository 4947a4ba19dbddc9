"""The pirate plugin, loaded through its entry point by a real npcbridge server."""

from __future__ import annotations

from pathlib import Path

from npcbridge_pirate import piratify

from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream


def test_piratify() -> None:
    assert piratify("Hello, you and your ship.") == "ahoy, ye and yer ship. Arr!"
    assert piratify("Arr!") == "Arr!"


async def test_entry_point_plugin_changes_the_reply(tmp_path: Path) -> None:
    async with FakeUpstream() as fake:
        async with await start_bridge(fake, tmp_path, entry_points=True) as bridge:
            assert bridge.app.plugins.get_plugin("pirate") is not None
            async with await bridge.client() as client:
                await client.define_npc("cap", {"name": "Cap", "pirate": True})
                await client.define_npc("clerk", {"name": "Clerk"})
                pirate = await client.say("cap", "p1", "[[reply:Hello, you want my map?]]")
                assert await pirate.text() == "ahoy, ye want me map? Arr!"
                assert pirate.end["rewritten"] is True
                plain = await client.say("clerk", "p1", "[[reply:Hello, you want my map?]]")
                assert await plain.text() == "Hello, you want my map?"
            system = fake.requests[0].body["messages"][0]["content"]
            assert "old sea pirate" in system
