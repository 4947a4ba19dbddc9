"""Test the plugin through a real npcbridge server and the fake upstream."""

from __future__ import annotations

from pathlib import Path

from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream


async def test_hour_reaches_the_prompt(tmp_path: Path) -> None:
    async with FakeUpstream() as fake:
        bridge = await start_bridge(fake, tmp_path, plugins=("my_npc_plugin",))
        try:
            async with await bridge.client() as client:
                await (await client.say("blacksmith", "p1", "hi", context={"hour": 23})).text()
            assert "nighttime (23:00)" in fake.requests[0].body["messages"][0]["content"]
        finally:
            await bridge.close()
