"""NPC actions (tool calling), emotes and the speaker cut, end to end over real sockets."""

from __future__ import annotations

import json

from npcbridge.features.speakers.cut import cut_speaker_lines, make_cut
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply, ToolCall

SHOPKEEPER = {
    "name": "Mira",
    "description": "Runs the general store.",
    "actions": [
        {
            "name": "give_item",
            "description": "Give the player an item.",
            "parameters": {
                "type": "object",
                "properties": {
                    "item": {"type": "string"},
                    "count": {"type": "integer", "minimum": 1},
                },
                "required": ["item"],
                "additionalProperties": False,
            },
        },
        {"name": "open_shop", "description": "Open the shop window."},
    ],
}


def _tool_directive(name: str, args: dict) -> str:
    return f"[[tool:{name}:{json.dumps(args)}]]"


async def test_valid_tool_call_becomes_an_action_and_text_streams(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("mira", SHOPKEEPER)
        reply = await client.say(
            "mira",
            "p1",
            "[[reply:Here you go, take these.]] " + _tool_directive("give_item", {"item": "rope"}),
        )
        deltas = [d async for d in reply]
        assert "".join(deltas) == "Here you go, take these."
        assert reply.actions == [{"name": "give_item", "args": {"item": "rope"}}]
        assert reply.end["actions"] == reply.actions
        assert "rejected_actions" not in reply.end
        frames = [f["type"] for f in reply.frames]
        assert frames.index("action") < frames.index("reply.end")
    tools = bridge.fake.requests[0].body["tools"]
    assert [t["function"]["name"] for t in tools] == ["give_item", "open_shop"]


async def test_invalid_tool_calls_are_reported_not_sent(bridge: Bridge) -> None:
    bridge.fake.script(
        Reply(
            text="Let me see what I have.",
            tool_calls=[
                ToolCall("give_item", {"item": "rope", "count": 0}),  # below the minimum
                ToolCall("give_item", {"colour": "red"}),  # missing item, unknown field
                ToolCall("burn_village", {}),  # not declared
                ToolCall("open_shop", "{not json"),  # arguments are not JSON
                ToolCall("open_shop", {}),  # the one valid call
            ],
        )
    )
    async with await bridge.client() as client:
        await client.define_npc("mira", SHOPKEEPER)
        reply = await client.say("mira", "p1", "Got anything for me?")
        text = await reply.text()
    assert text == "Let me see what I have."
    assert [f for f in reply.frames if f["type"] == "reply.delta"]  # the text still streamed
    assert reply.actions == [{"name": "open_shop", "args": {}}]
    assert [f["name"] for f in reply.frames if f["type"] == "action"] == ["open_shop"]
    rejected = reply.end["rejected_actions"]
    assert [r["name"] for r in rejected] == ["give_item", "give_item", "burn_village", "open_shop"]
    assert "count" in rejected[0]["reason"] and "unknown action" in rejected[2]["reason"]
    assert "not valid JSON" in rejected[3]["reason"]
    assert reply.end["finish"] == "stop"


async def test_only_invalid_tool_call_gives_no_action_frame(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("mira", SHOPKEEPER)
        reply = await client.say("mira", "p1", _tool_directive("give_item", {"count": "two"}))
        assert await reply.text() == "As you wish."
        assert not [f for f in reply.frames if f["type"] == "action"]
        assert "actions" not in reply.end and len(reply.end["rejected_actions"]) == 1


async def test_emotes_are_events_and_never_in_the_spoken_text(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("mira", SHOPKEEPER)
        reply = await client.say(
            "mira", "p1", "[[reply:(smiles warmly) Welcome back! *wipes the counter* Rope?]]"
        )
        text = await reply.text()
    assert text == "Welcome back! Rope?"
    assert reply.end["emotes"] == ["smiles warmly", "wipes the counter"]
    assert reply.emotes == reply.end["emotes"]  # the Python client collects them
    emote_frames = [f for f in reply.frames if f["type"] == "emote"]
    assert [f["emote"] for f in emote_frames] == reply.end["emotes"]
    assert all(f["npc"] == "mira" for f in emote_frames)
    spoken = "".join(f["text"] for f in reply.frames if f["type"] == "reply.delta")
    assert "*" not in spoken and "(" not in spoken


async def test_npc_never_speaks_as_the_player(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("mira", SHOPKEEPER)
        reply = await client.say(
            "mira",
            "p7",
            "[[reply:Mira: Rope is two coins.\nPlayer: I will take it!\nMira: Splendid.]]"
            " [[tps:50]]",
        )
        text = await reply.text()
    assert text == "Rope is two coins."
    spoken = "".join(f["text"] for f in reply.frames if f["type"] == "reply.delta")
    assert "Player" not in spoken and "Mira:" not in spoken
    assert reply.end["finish"] == "stop"
    # the upstream stream was closed early rather than read to the end
    await bridge.fake.wait_disconnect(timeout=3)


async def test_player_id_and_generic_name_labels_are_cut(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("mira", SHOPKEEPER)
        by_id = await client.say("mira", "p7", "[[reply:Fine.\np7: thanks]]")
        assert await by_id.text() == "Fine."
        generic = await client.say("mira", "p7", "[[reply:Fine.\nOld Tom: Hello there.]]")
        assert await generic.text() == "Fine."
        harmless = await client.say("mira", "p7", "[[reply:Prices:\nRope: 2 coins.]]")
        assert await harmless.text() == "Prices:\nRope: 2 coins."


def test_speaker_cut_is_streaming_aware() -> None:
    cut = make_cut(["Mira", "mira"], ["p7"])
    pieces = ["Aye", ", fine", ".\n", "Pla", "yer", ": ", "sure", "\nMira: more"]
    out = [cut.feed(p) for p in pieces]
    assert "".join(out) + cut.flush() == "Aye, fine."
    assert out[0] == ""  # a line start is held only while it could be a label
    assert out[1] == "Aye, fine"
    assert cut.cut and cut.cut_label == "Player"


def test_speaker_cut_releases_common_first_words_at_once() -> None:
    """The first word of a reply is not held when it cannot start a label."""
    for first in ("Well ", "Welcome ", "A ", "I ", "Greetings "):
        cut = make_cut(["Brom"], ["p1"])
        assert cut.feed(first) == first, first
    # still held: the start of a known speaker's name ("The player:"), or of a generic name
    assert make_cut(["Brom"], ["p1"]).feed("The ") == ""
    assert make_cut(["Brom"], ["Good Wife"]).feed("Good ") == ""
    assert make_cut(["Brom"], ["p1"]).feed("Old ") == ""
    assert make_cut(["Brom"], ["p1"]).feed("Well") == ""  # "Wellesley:" may follow
    cut = make_cut(["Brom"], ["p1"])
    assert cut.feed("Old ") + cut.feed("Tom: hi") + cut.flush() == ""  # and it is still cut


def test_speaker_cut_whole_text() -> None:
    own, others = ["Brom", "blacksmith"], ["p1", "Aelindra", "mage"]
    assert cut_speaker_lines("Brom: Aye.", own, others) == "Aye."
    assert cut_speaker_lines("**Brom:** Aye.", own, others) == "Aye."
    assert cut_speaker_lines("Aye.\nAelindra: Hush.", own, others) == "Aye."
    assert cut_speaker_lines("Aye.\nmage: Hush.", own, others) == "Aye."
    assert cut_speaker_lines("Note: the mine is shut.", own, others) == "Note: the mine is shut."
    assert cut_speaker_lines("The mine closed: sad.", own, others) == "The mine closed: sad."
    assert cut_speaker_lines("Steel: 12 gold", own, others) == "Steel: 12 gold"
