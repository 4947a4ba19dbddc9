"""The moderation plugin, loaded through its entry point by a real npcbridge server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from npcbridge_moderation import Settings

from npcbridge.client import NpcBridgeError
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply

SMITH = {"name": "Brom", "description": "A blacksmith."}
SETTINGS = {"blocklist": ["damn", "dark lord"], "max_input_chars": 60, "max_output_chars": 80}


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    async with FakeUpstream(tokens_per_s=200) as fake:
        async with await start_bridge(
            fake, tmp_path, entry_points=True, extra__moderation=SETTINGS
        ) as b:
            yield b


async def _say(bridge: Bridge, text: str, **options: Any) -> Any:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say("smith", "p1", text, **options)
        await reply.text()
        return reply


def test_blocklist_matches_whole_words_and_phrases() -> None:
    pattern = Settings(blocklist=["hell", "dark lord"]).pattern()
    assert pattern is not None
    assert pattern.search("What the HELL?") and pattern.search("the dark\n lord rises")
    assert not pattern.search("hello there") and not pattern.search("darkly, lordly")
    assert Settings().pattern() is None


async def test_plugin_is_loaded_and_inert_without_settings(tmp_path: Path) -> None:
    async with FakeUpstream() as fake:
        async with await start_bridge(fake, tmp_path, entry_points=True) as b:
            assert b.app.plugins.get_plugin("moderation") is not None
            async with await b.client() as client:
                reply = await client.say("blacksmith", "p1", "[[reply:Damn the dark lord.]] damn")
                assert await reply.text() == "Damn the dark lord."
                assert reply.end["finish"] == "stop"


async def test_blocked_player_input_is_an_error_and_never_sent(bridge: Bridge) -> None:
    with pytest.raises(NpcBridgeError) as info:
        await _say(bridge, "Damn you, smith")
    assert info.value.code == "filtered" and "damn" not in info.value.message.lower()
    with pytest.raises(NpcBridgeError) as info:
        await _say(bridge, "x" * 61)
    assert info.value.code == "filtered" and "60" in info.value.message
    assert bridge.fake.requests == []


async def test_blocked_output_stops_the_stream_with_finish_filtered(bridge: Bridge) -> None:
    bridge.fake.script(Reply(text="Aye lad, the dark lord is coming for us all tonight."))
    reply = await _say(bridge, "Who is coming?")
    assert reply.end["finish"] == "filtered"
    assert reply.end["text"] == "Aye lad, the"
    spoken = "".join(f["text"] for f in reply.frames if f["type"] == "reply.delta")
    assert "lord" not in spoken and "dark" not in spoken.replace("Aye lad, the", "")
    await bridge.fake.wait_disconnect(timeout=3)  # the upstream request was closed


async def test_blocked_last_word_is_caught_at_the_end(bridge: Bridge) -> None:
    bridge.fake.script(Reply(text="Well then, damn"))
    reply = await _say(bridge, "So?")
    assert reply.end["finish"] == "filtered"
    assert "damn" not in reply.end["text"]


async def test_output_length_limit_filters(bridge: Bridge) -> None:
    reply = await _say(bridge, "[[words:40]]")
    assert reply.end["finish"] == "filtered"
    assert 0 < len(reply.end["text"]) <= 80


async def test_clean_reply_is_untouched(bridge: Bridge) -> None:
    reply = await _say(bridge, "[[reply:Hello there, the darkness lifts.]]")
    assert reply.end["finish"] == "stop"
    assert reply.end["text"] == "Hello there, the darkness lifts."


async def test_replacement_text(tmp_path: Path) -> None:
    async with FakeUpstream() as fake:
        async with await start_bridge(
            fake,
            tmp_path,
            entry_points=True,
            extra__moderation={"blocklist": ["damn"], "replacement": "..."},
        ) as b:
            async with await b.client() as client:
                fake.script(Reply(text="Oh damn it."))
                reply = await client.say("blacksmith", "p1", "Well?")
                assert await reply.text() == "..."
                assert reply.end["finish"] == "filtered" and reply.end["rewritten"] is True


async def test_bad_settings_stop_start_up(tmp_path: Path) -> None:
    async with FakeUpstream() as fake:
        with pytest.raises(Exception, match="max_input_chars"):
            await start_bridge(
                fake, tmp_path, entry_points=True, extra__moderation={"max_input_chars": 0}
            )


async def test_longer_words_are_not_blocked_while_streaming(bridge: Bridge) -> None:
    bridge.fake.script(Reply(text="Damnation, said the darkly lordly smith."))
    reply = await _say(bridge, "Hm?", max_tokens=100)
    assert reply.end["finish"] == "stop"
    assert reply.end["text"] == "Damnation, said the darkly lordly smith."


async def test_filtered_bark_is_its_own_error(bridge: Bridge) -> None:
    bridge.fake.script(Reply(text="Damn this rain."), model="llama-3.3-70b-versatile")
    bridge.fake.script(Reply(text="Fresh bread!"), model="llama-3.1-8b-instant")
    async with await bridge.client() as client:
        await client.define_npc("a", {"name": "A", "model": "llama-3.3-70b-versatile"})
        await client.define_npc("b", {"name": "B", "model": "llama-3.1-8b-instant"})
        answer = await client.request(
            {"type": "barks.generate", "npcs": [{"npc": "a"}, {"npc": "b"}]}
        )
    first, second = answer["results"]
    assert first == {"npc": "a", "error": {"code": "filtered", "message": "bark filtered"}}
    assert second == {"npc": "b", "text": "Fresh bread!"}


async def test_scene_player_line_is_checked_but_npc_lines_are_not_input(bridge: Bridge) -> None:
    long_npc_line = "Aelindra, tell them. " + "The forge is hot. " * 3  # over the input limit
    bridge.fake.script(Reply(text=long_npc_line), Reply(text="Indeed."))
    async with await bridge.client() as client:
        await client.request(
            {"type": "scene.start", "scene": "s", "player": "p1", "npcs": ["blacksmith", "mage"]}
        )
        await client.send(
            {"type": "scene.say", "id": "x", "scene": "s", "text": "Damn, Brom!", "max_replies": 2}
        )
        frames = [await client.unsolicited.get() for _ in range(2)]
        assert frames[0]["type"] == "error" and frames[0]["code"] == "filtered"
        assert frames[1]["type"] == "scene.done" and frames[1]["stopped"] == "error"
        await client.send(
            {
                "type": "scene.say",
                "id": "y",
                "scene": "s",
                "text": "Brom, Aelindra?",
                "max_replies": 2,
            }
        )
        done = None
        while done is None:
            frame = await client.unsolicited.get()
            done = frame if frame["type"] == "scene.done" else None
    assert [r["finish"] for r in done["replies"]] == ["stop", "stop"]
