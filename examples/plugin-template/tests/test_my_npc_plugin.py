"""Test the plugin through a real npcbridge server and the fake upstream.

Every wait has a timeout (``asyncio.wait_for``), so a hang fails in seconds instead of stalling
the run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

TIMEOUT_S = 10


async def test_hour_reaches_the_prompt(tmp_path: Path) -> None:
    async with FakeUpstream() as fake:
        started = start_bridge(fake, tmp_path, plugins=("my_npc_plugin",))
        async with await asyncio.wait_for(started, TIMEOUT_S) as bridge:
            async with await asyncio.wait_for(bridge.client(), TIMEOUT_S) as client:
                reply = await client.say("blacksmith", "p1", "hi", context={"hour": 23})
                await asyncio.wait_for(reply.text(), TIMEOUT_S)
            assert "nighttime (23:00)" in fake.requests[0].body["messages"][0]["content"]
