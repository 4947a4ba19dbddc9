"""Error messages (and the reasons of rejected tool calls) name the field, never a value the game
or the model sent: scenes, quests and actions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from npcbridge.client import Client, NpcBridgeError
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply

#: a long value no message of ours contains unless it echoes what it was sent
SENT = "Distinctive-Value-Sent-By-The-Game-0123456789"


async def _refusal(client: Client, frame: dict[str, Any]) -> str:
    with pytest.raises(NpcBridgeError) as info:
        await client.request(frame)
    assert info.value.code == "bad_request", info.value
    message = str(info.value)
    assert SENT not in message and SENT.lower() not in message, message
    return message


async def test_scene_errors_name_the_field_not_the_value(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.scene_start("tavern", ["mage"], "p1")
        message = await _refusal(client, {"type": "scene.say", "scene": SENT, "text": "hi"})
        assert "'scene'" in message
        message = await _refusal(client, {"type": "scene.end", "scene": SENT})
        assert "'scene'" in message
        message = await _refusal(client, {"type": "scene.remove", "scene": "tavern", "npc": SENT})
        assert "'npc'" in message
        frame = {"type": "scene.say", "scene": "tavern", "text": "hi", "to": SENT}
        assert "'to'" in await _refusal(client, frame)


async def test_quest_field_declarations_are_refused_without_echo(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        frame = {"type": "quest.generate", "theme": "mine"}
        message = await _refusal(client, {**frame, "fields": {SENT: {"type": "integer"}}})
        assert "'fields'" in message
        message = await _refusal(client, {**frame, "fields": {"xp": {"type": SENT}}})
        assert "'fields.xp'" in message and "JSON schema" in message
    assert bridge.fake.requests == []


async def test_quest_errors_do_not_name_the_answers_keys(bridge: Bridge) -> None:
    quest = {
        "title": "Rats",
        "description": "Rats in the cellar.",
        "objectives": ["Kill the rats"],
        "rewards": ["20 gold"],
        "xp": {SENT: "many"},
    }
    bridge.fake.script(Reply(json=quest), Reply(json=quest), Reply(text="no"))
    fields = {"xp": {"type": "object", "additionalProperties": {"type": "integer"}}}
    async with await bridge.client() as client:
        with pytest.raises(NpcBridgeError) as info:
            await client.request({"type": "quest.generate", "theme": "rats", "fields": fields})
    message = str(info.value)
    assert info.value.code == "upstream_error"
    assert "xp: breaks its schema's 'type' rule" in message and SENT not in message, message


ACTOR = {
    "name": "Mira",
    "description": "Runs the general store.",
    "actions": [
        {
            "name": "give_item",
            "parameters": {
                "type": "object",
                "properties": {"item": {"type": "string", "maxLength": 5}},
                "additionalProperties": {"type": "integer"},
            },
        }
    ],
}


async def test_rejected_tool_calls_say_why_without_the_models_words(bridge: Bridge) -> None:
    calls = [
        ("give_item", {"item": SENT}),  # too long: jsonschema's message quotes it
        ("give_item", {SENT: "x"}),  # a key the model made up
        (SENT, {}),  # not declared
    ]
    directives = "".join(f"[[tool:{name}:{json.dumps(args)}]]" for name, args in calls)
    async with await bridge.client() as client:
        await client.define_npc("mira", ACTOR)
        reply = await client.say("mira", "p1", "[[reply:Hm.]] " + directives)
        await reply.text()
    reasons = [r["reason"] for r in reply.end["rejected_actions"]]
    assert len(reasons) == 3 and all(SENT not in reason for reason in reasons), reasons
    assert "'give_item'" in reasons[0] and "item" in reasons[0] and "maxLength" in reasons[0]
    assert "'type'" in reasons[1]
    assert "unknown action" in reasons[2]


async def test_an_unusable_action_schema_is_refused_without_echo(bridge: Bridge) -> None:
    persona = {**ACTOR, "actions": [{"name": "give_item", "parameters": {"type": SENT}}]}
    async with await bridge.client() as client:
        message = await _refusal(client, {"type": "npc.define", "npc": "mira", "persona": persona})
    assert "parameters" in message and "JSON schema" in message


async def test_state_and_world_event_errors_name_the_field_not_the_value(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("guard", {"name": "Hilde", "state": {}})
        state = {"type": "npc.state", "npc": "guard", "player": "p1"}
        watch = [{"key": "trust", "name": SENT}]
        assert "'watch'" in await _refusal(client, {**state, "op": "watch", "watch": watch})
        watch = [{"key": "mood", "name": SENT, "below": 1}]
        assert "'watch'" in await _refusal(client, {**state, "op": "watch", "watch": watch})
        no_player = {"type": "npc.state", "npc": "guard", "op": "watch", "watch": watch[:0] + [
            {"key": "trust", "below": 1, "name": SENT}]}  # fmt: skip
        assert "'watch'" in await _refusal(client, no_player)
        event = {"type": "world.event", "text": "x"}
        assert "'scene'" in await _refusal(client, {**event, "scene": SENT})
        assert "'witnesses'" in await _refusal(
            client, {**event, "npc": "guard", "witnesses": [SENT]}
        )
        await client.define_npc("plain", {"name": SENT})
        assert "'npc'" in await _refusal(client, {**state, "npc": "plain"})
