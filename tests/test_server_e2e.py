"""End to end over real WebSockets on loopback: client → npcbridge → fake upstream (openai SDK)."""

from __future__ import annotations

import asyncio

import pytest

from npcbridge.builtin.persona import persona_from_card
from npcbridge.client import NpcBridgeError
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply

SMITH = {"name": "Brom", "description": "A blacksmith, rough but kind."}
MAGE = {"name": "Aelindra", "description": "A haughty elf mage."}


async def test_two_concurrent_says_interleave_and_complete(bridge: Bridge) -> None:
    fake = bridge.fake
    fake.tokens_per_s = 200
    async with await bridge.client() as client:
        assert client.welcome["protocol"] == 1
        assert "stream" in client.welcome["features"]
        await client.define_npc("smith", SMITH)
        await client.define_npc("elf", MAGE)
        a = await client.say("smith", "p1", "[[words:12]]")
        b = await client.say("elf", "p1", "[[words:12]]")
        order: list[object] = []

        async def drain(reply, tag):
            async for _ in reply:
                order.append(tag)

        await asyncio.gather(drain(a, "a"), drain(b, "b"))
        assert a.end is not None and b.end is not None
        assert a.end["finish"] == b.end["finish"] == "stop"
        assert a.start == {
            "type": "reply.start",
            "id": a.id,
            "npc": "smith",
            "model": "llama-3.1-8b-instant",
        }
        # interleaved: both streams were open at once, so neither finished before the other began
        first_b, last_a = order.index("b"), len(order) - 1 - order[::-1].index("a")
        assert first_b < last_a
        assert len(a.end["text"].split()) == 12
        deltas = [f for f in a.frames if f["type"] == "reply.delta"]
        assert [f["seq"] for f in deltas] == list(range(len(deltas)))
        assert "".join(f["text"] for f in deltas) == a.end["text"]
        assert a.end["usage"] == {
            "input_tokens": fake.requests[0].usage["prompt_tokens"]
            if fake.requests[0].body["messages"][0]["content"].startswith("You are Brom")
            else fake.requests[1].usage["prompt_tokens"],
            "output_tokens": 12,
        }


async def test_reply_cost_matches_reported_usage(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say("smith", "p1", "hello")
        await reply.text()
    usage = bridge.fake.last_usage
    expected = (usage["prompt_tokens"] * 0.05 + usage["completion_tokens"] * 0.08) / 1e6
    assert reply.end["cost_usd"] == pytest.approx(expected)
    assert reply.end["usage"]["input_tokens"] == usage["prompt_tokens"]


async def test_cancel_closes_upstream_and_ends_cancelled(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say("smith", "p1", "[[slow]]")
        got = []
        async for delta in reply:
            got.append(delta)
            if len(got) == 2:
                await reply.cancel()
        assert reply.end["finish"] == "cancelled"
        assert reply.end["text"].startswith("".join(got[:2]).strip())
        await bridge.fake.wait_disconnect(timeout=2)
        assert bridge.fake.disconnects == 1
        assert bridge.fake.completed == 0


async def test_client_vanishing_cancels_upstream(bridge: Bridge) -> None:
    client = await bridge.client()
    await client.define_npc("smith", SMITH)
    reply = await client.say("smith", "p1", "[[slow]]")
    async for _ in reply:
        break
    client.ws.transport.abort()  # no close handshake: the client just vanishes
    await bridge.fake.wait_disconnect(timeout=3)
    assert bridge.fake.disconnects == 1


async def test_upstream_error_before_deltas_is_error_only(bridge: Bridge) -> None:
    bridge.fake.script(Reply(status=400))
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say("smith", "p1", "hi")
        with pytest.raises(NpcBridgeError) as info:
            await reply.text()
        assert info.value.code == "upstream_error"
        assert reply.end is None
        assert "test-key" not in info.value.message


async def test_length_cut_trims_unfinished_sentence(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say(
            "smith", "p1", "[[reply:Aye. The forge is hot and the steel is]]", max_tokens=8
        )
        assert await reply.text() == "Aye."
        assert reply.end["finish"] == "length"
        assert reply.end["rewritten"] is True


async def test_request_sent_upstream(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", {**SMITH, "model": "gpt-3.5-turbo", "temperature": 0.3})
        await (await client.say("smith", "p7", "Where is the mine?", context={"hour": 22})).text()
        await (await client.say("smith", "p7", "And the key?")).text()
    first, second = bridge.fake.requests
    assert first.body["model"] == "llama-3.1-8b-instant"  # alias resolved
    assert first.body["temperature"] == 0.3
    assert first.body["stream"] is True
    system = first.body["messages"][0]
    assert system["role"] == "system" and "You are Brom" in system["content"]
    assert "hour: 22" in system["content"] and "1-2 sentences" in system["content"]
    assert first.body["messages"][-1] == {"role": "user", "content": "Where is the mine?"}
    # the conversation window carries the first exchange into the second request
    roles = [m["role"] for m in second.body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    for record in (first, second):
        assert not {"logprobs", "logit_bias", "top_logprobs", "n"} & set(record.body)
        assert all("name" not in m for m in record.body["messages"])


async def test_config_npc_usable_without_define(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        assert await (await client.say("blacksmith", "p1", "[[reply:Aye.]]")).text() == "Aye."


async def test_character_card_v2_import(bridge: Bridge) -> None:
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Seraphina",
            "description": "A forest guardian.",
            "personality": "gentle",
            "scenario": "In a glade.",
            "first_mes": "Welcome, traveller.",
            "mes_example": "<START>\n{{char}}: Rest here.",
            "creator_notes": "keep me",
            "system_prompt": "Never leave the glade.",
            "extensions": {"custom": {"x": 1}},
        },
    }
    async with await bridge.client() as client:
        await client.define_npc("guardian", card=card)
        await (await client.say("guardian", "p1", "hi")).text()
    system = bridge.fake.requests[0].body["messages"][0]["content"]
    assert "You are Seraphina" in system and "Never leave the glade." in system
    persona = persona_from_card(card)
    assert persona.card is not None and persona.card["data"]["creator_notes"] == "keep me"
    assert persona.examples == ["Welcome, traveller.", "{{char}}: Rest here."]


async def test_welcome_and_ping(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        assert client.welcome["limits"] == {"max_message_bytes": 65536, "max_in_flight": 8}
        assert client.welcome["server"].startswith("npcbridge/")
        assert "offline" not in client.welcome["features"]
        assert (await client.ping())["type"] == "pong"
