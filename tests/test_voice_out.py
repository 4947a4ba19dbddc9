"""Voiced replies end to end over real WebSockets: client → npcbridge → fake upstream (the real
openai SDK on /chat/completions and /audio/speech). docs/protocol.md, "Voice"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from voice_helpers import SMITH, audio_of, of_type, types

from npcbridge.client import Client
from npcbridge.features.voice.wav import MOUTH_HZ
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

TTS = "canopylabs/orpheus-v1-english"
LINE = "[[reply:*wipes his hands* Aye, lad, leave it on the anvil. I'll have it sharp by dawn.]]"


async def _said(client: Client, text: str = LINE, **options: object) -> object:
    await client.define_npc("smith", SMITH)
    reply = await client.say_audio("smith", "p1", text, **options)
    await reply.text()
    return reply


async def test_welcome_offers_voice_and_speech_in(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        assert {"voice", "speech_in"} <= set(client.welcome["features"])


async def test_units_are_spoken_in_order_before_reply_end(bridge: Bridge) -> None:
    bridge.fake.tokens_per_s = 200
    bridge.fake.audio.ms_per_char = 20  # every unit fits one frame
    async with await bridge.client() as client:
        reply = await _said(client)
    assert reply.end is not None and reply.end["finish"] == "stop"
    frames = audio_of(reply)
    texts = [frame["text"] for frame in frames]
    # a first clause of a few words, then whole sentences; the emote is never spoken
    assert texts == ["Aye, lad, leave it on the anvil.", "I'll have it sharp by dawn."]
    assert [frame["seq"] for frame in frames] == [0, 1]
    assert types(reply)[-1] == "reply.end" and types(reply)[0] == "reply.start"
    assert reply.frames.index(frames[-1]) < reply.frames.index(reply.end)
    spoken = [r.fields["input"] for r in bridge.fake.audio.requests]
    assert spoken == texts and all("wipes" not in text for text in spoken)
    assert {r.fields["voice"] for r in bridge.fake.audio.requests} == {"troy"}
    assert {r.model for r in bridge.fake.audio.requests} == {TTS}
    for frame in frames:
        # the fake speaks 20 ms per character here, at 24 kHz, PCM16 mono
        assert frame["sample_rate"] == 24000 and frame["channels"] == 1
        assert frame["duration_ms"] == 20 * len(frame["text"])
        assert len(frame["audio"]) == 2 * 24000 * frame["duration_ms"] // 1000
        assert len(frame["mouth"]) == -(-frame["duration_ms"] * MOUTH_HZ // 1000)
        assert max(frame["mouth"]) > 100 and min(frame["mouth"]) == 0  # letters and spaces
    voice = reply.end["voice"]
    chars = sum(len(text) for text in texts)
    assert voice["chars"] == chars and voice["audio_ms"] == 20 * chars
    assert voice["cost_usd"] == pytest.approx(chars * 22 / 1_000_000)
    assert 0 < voice["ttfa_ms"] < reply.end["timing"]["total_ms"] and "error" not in voice


async def test_frames_stay_in_order_when_a_later_unit_is_ready_first(bridge: Bridge) -> None:
    audio = bridge.fake.audio
    audio.ms_per_input_char = 3  # a long sentence takes longer to synthesise
    long = "This sentence is a good deal longer than the one after it, " * 2
    async with await bridge.client() as client:
        reply = await _said(client, f"[[reply:Aye, lad, listen. {long.strip()}. Go.]]")
    done = {r.fields["input"]: r.monotonic for r in audio.requests}
    texts = [frame["text"] for frame in audio_of(reply) if frame["text"]]
    assert texts == ["Aye, lad, listen.", long.strip() + ".", "Go."]
    frames = audio_of(reply)
    assert [frame["seq"] for frame in frames] == list(range(len(frames)))
    assert all(text in done for text in texts)


async def test_a_long_unit_is_split_into_frames_under_the_limit(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        reply = await _said(client, "[[reply:Aye, lad, this one sentence takes a while to say.]]")
    frames = audio_of(reply)
    assert len(frames) > 1 and all(len(f["audio"]) <= 48000 for f in frames)
    assert frames[0]["text"].startswith("Aye") and {f["text"] for f in frames[1:]} == {""}
    assert [f["seq"] for f in frames] == list(range(len(frames)))
    assert "".join(f["text"] for f in frames) == "Aye, lad, this one sentence takes a while to say."


async def test_voice_choice_persona_and_override(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        plain = await client.say("smith", "p1", "[[reply:Aye.]]")
        await plain.text()
        assert not audio_of(plain) and "voice" not in (plain.end or {})
        await client.define_npc(
            "crier", {"name": "Tom", "voice": {"name": "austin", "always": True}}
        )
        always = await client.say("crier", "p1", "[[reply:Hear ye.]]")
        await always.text()
        refused = await client.say("crier", "p1", "[[reply:Hush.]]", voice=False)
        await refused.text()
        override = await client.say_audio(
            "smith", "p1", "[[reply:Aye, lad.]]", voice={"name": "daniel", "speed": 1.25}
        )
        await override.text()
    assert [f["text"] for f in audio_of(always)] == ["Hear ye."] and not audio_of(refused)
    bodies = {r.fields["input"]: r.fields for r in bridge.fake.audio.requests}
    assert bodies["Hear ye."]["voice"] == "austin" and "speed" not in bodies["Hear ye."]
    assert bodies["Aye, lad."]["voice"] == "daniel" and bodies["Aye, lad."]["speed"] == 1.25


async def test_stream_false_sends_audio_then_reply_end(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        reply = await _said(client, "[[reply:Aye. Go.]]", stream=False)
    assert types(reply) == ["reply.audio", "reply.end"]


async def test_speaker_cut_text_is_not_spoken(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        reply = await _said(client, "[[reply:Aye, lad, it is done.\np1: Thanks! Here is gold.]]")
    assert [f["text"] for f in audio_of(reply) if f["text"]] == ["Aye, lad, it is done."]
    assert "gold" not in reply.end["text"]


async def test_tts_failure_degrades_to_text(bridge: Bridge) -> None:
    bridge.fake.audio.fail_speech(400)
    async with await bridge.client() as client:
        reply = await _said(client, "[[reply:Aye, lad, leave it. Go on.]]")
    assert reply.end is not None and reply.end["finish"] == "stop"
    assert reply.end["text"] == "Aye, lad, leave it. Go on."
    assert not audio_of(reply) and reply.end["voice"]["error"] == "upstream_error"
    assert reply.end["voice"]["audio_ms"] == 0


async def test_a_retryable_tts_failure_is_retried(bridge: Bridge) -> None:
    bridge.fake.audio.fail_speech(503)
    async with await bridge.client() as client:
        reply = await _said(client, "[[reply:Aye.]]")
    assert [f["text"] for f in audio_of(reply)] == ["Aye."] and "error" not in reply.end["voice"]
    assert [r.outcome for r in bridge.fake.audio.requests] == ["error", "completed"]


async def test_cancel_stops_synthesis_and_no_audio_follows_reply_end(bridge: Bridge) -> None:
    audio = bridge.fake.audio
    audio.first_byte_ms = 600  # each synthesis takes a while
    bridge.fake.tokens_per_s = 20
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        line = "[[reply:Aye, lad, one. Two more words here. Three.]]"
        reply = await client.say_audio("smith", "p1", line)
        await bridge.fake.wait_for(lambda: bool(audio.requests))
        await reply.cancel()
        await reply.text()
        # the text stream and the synthesis in flight were both closed at once
        await bridge.fake.wait_disconnect(count=2)
        await asyncio.sleep(0.8)  # a synthesis left running would have answered by now
        assert client.unsolicited.empty()
    assert reply.end is not None and reply.end["finish"] == "cancelled"
    assert not audio_of(reply) and reply.frames[-1] is reply.end
    assert audio.requests[0].outcome == "disconnected"


async def test_barge_in_ends_with_the_heard_text_and_memory_keeps_it(bridge: Bridge) -> None:
    bridge.fake.tokens_per_s = 8
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say_audio(
            "smith", "p1", "[[reply:Haunted? Aye, lad. The old mine is full of ghosts and worse.]]"
        )
        async for frame in reply.audio():
            assert frame.text == "Haunted?"
            await reply.cancel(barge_in=True)
            break
        await reply.text()
        await asyncio.sleep(0.3)
        assert client.unsolicited.empty()  # the unit in flight was dropped, not sent late
        end = reply.end
        assert end is not None and end["finish"] == "cancelled" and end["rewritten"] is True
        assert end["text"] == "Haunted?" and end["voice"]["chars"] == len(end["text"])
        deltas = "".join(f["text"] for f in of_type(reply, "reply.delta"))
        assert deltas.startswith(end["text"]) and deltas != end["text"]
    assert bridge.app.store is not None
    stored = await bridge.app.store.recent_turns("smith", "p1", 5)
    assert [(t.reply_text, t.status) for t in stored] == [("Haunted?", "cancelled")]


async def test_voice_cost_counts_against_the_budget(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        reply = await _said(client)
    assert reply.end is not None
    budgets = bridge.app.gateway.budgets
    day = budgets.scopes("p1", "-")[2]  # every turn adds to the day's total
    expected = reply.end["cost_usd"] + reply.end["voice"]["cost_usd"]
    for _ in range(100):  # the after-turn hooks count it once reply.end went out
        if await budgets.spent_usd(day) >= expected * 0.999:
            break
        await asyncio.sleep(0.02)
    assert await budgets.spent_usd(day) == pytest.approx(expected, rel=1e-3)


async def test_a_budget_too_small_for_speech_leaves_the_text(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # the text turn (50 tokens at most) fits in $0.0005 a day, a synthesis of 38 characters
    # ($0.00084) does not
    options = {"budget__per_player_usd_per_day": 0.0005}
    async with await start_bridge(fake_upstream, tmp_path, **options) as bridge:
        async with await bridge.client() as client:
            line = "[[reply:Aye, lad, leave it on the anvil there.]]"
            reply = await _said(client, line, max_tokens=50)
    assert reply.end is not None and reply.end["finish"] == "stop"
    assert reply.end["text"] == "Aye, lad, leave it on the anvil there."
    assert reply.end["voice"]["error"] == "budget_exceeded" and not audio_of(reply)
    assert not fake_upstream.audio.requests
