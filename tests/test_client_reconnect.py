"""The Python client's reconnect, against real servers stopped and started on one port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from npcbridge.client import Client, NpcBridgeError
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

ELF = {"name": "Aelindra", "description": "A haughty elf mage."}


async def stop_server_mid_reply(client: Client, bridge: Bridge, npc: str) -> None:
    """Stop the server while a reply streams; that reply fails with retryable ``disconnected``."""
    bridge.fake.tokens_per_s = 5
    in_flight = await client.say(npc, "p1", "[[words:40]]")
    await bridge.fake.wait_active_streams(1)
    await bridge.close()
    with pytest.raises(NpcBridgeError) as info:
        await in_flight.text()
    assert info.value.code == "disconnected" and info.value.retryable
    assert not client.connected
    bridge.fake.tokens_per_s = 0


async def test_reconnects_defines_npcs_again_and_sends_what_waited(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with (
        await start_bridge(fake_upstream, tmp_path) as first,
        await Client.connect(first.url, reconnect=True, reconnect_initial_s=0.05) as client,
    ):
        port = first.server.port
        await client.define_npc("elf", ELF)  # a connection-scoped NPC, unknown to a new server
        assert await (await client.say("elf", "p1", "Hello")).text()

        await stop_server_mid_reply(client, first, "elf")

        # a request made while the server is down waits for the next connection
        waiting = asyncio.create_task(client.say("elf", "p1", "Still there?"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        async with await start_bridge(fake_upstream, tmp_path, port=port):
            reply = await asyncio.wait_for(waiting, 10)
            assert "Still there?" in await reply.text()
            assert client.connected and client.reconnects == 1
            assert client.welcome["session"] != ""  # the new session's welcome
            request = fake_upstream.last_request
            assert request is not None and "Aelindra" in request.messages[0]["content"]


async def test_a_refused_reconnect_stops_the_client(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__token="old-secret") as first:
        port = first.server.port
        client = await Client.connect(
            first.url, token="old-secret", reconnect=True, reconnect_initial_s=0.05
        )
    async with (
        client,
        await start_bridge(fake_upstream, tmp_path, port=port, server__token="new-secret"),
    ):
        with pytest.raises(NpcBridgeError) as info:
            await asyncio.wait_for(client.wait_connected(), 10)
        assert info.value.code == "unauthorized"
        assert client.stopped is info.value
        with pytest.raises(NpcBridgeError, match="unauthorized"):
            await client.say("blacksmith", "p1", "Hello?")


async def test_close_while_reconnecting_fails_what_waits(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    bridge = await start_bridge(fake_upstream, tmp_path)
    client = await Client.connect(bridge.url, reconnect=True, reconnect_initial_s=0.05)
    await bridge.close()
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(client.ping())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await client.close()
    with pytest.raises(NpcBridgeError) as info:
        await asyncio.wait_for(waiting, 5)
    assert info.value.code == "closed" and not info.value.retryable


async def test_without_reconnect_a_drop_shows(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with (
        await start_bridge(fake_upstream, tmp_path) as bridge,
        await Client.connect(bridge.url) as client,
    ):
        await stop_server_mid_reply(client, bridge, "blacksmith")
        with pytest.raises(NpcBridgeError, match="disconnected"):
            await client.wait_connected()
        with pytest.raises(ConnectionClosed):
            await client.ping()
        assert client.reconnects == 0
