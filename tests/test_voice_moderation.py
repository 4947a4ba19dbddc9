"""Voice with the moderation plugin: a filtered reply is never spoken past what the player got,
and the transcript of the player's speech is moderated like a typed line."""

from __future__ import annotations

from pathlib import Path

import pytest
from voice_helpers import SMITH, audio_of, of_type, speech_wav

from npcbridge.client import NpcBridgeError
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

MODERATION = {"moderation": {"blocklist": ["dark lord", "damn"]}}


async def test_a_filtered_reply_is_not_spoken(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    fake_upstream.tokens_per_s = 200
    options = {"entry_points": True, "extra__moderation": MODERATION["moderation"]}
    async with await start_bridge(fake_upstream, tmp_path, **options) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("smith", SMITH)
            fake_upstream.script("Aye, lad, well done now. The dark lord comes for us all.")
            reply = await client.say_audio("smith", "p1", "What news?")
            await reply.text()
    assert reply.end is not None and reply.end["finish"] == "filtered"
    spoken = " ".join(f["text"] for f in audio_of(reply))
    sent = "".join(f["text"] for f in of_type(reply, "reply.delta"))
    assert spoken.startswith("Aye, lad, well done now.")
    assert "dark" not in spoken and "lord" not in spoken and "dark" not in sent
    assert spoken.replace(" ", "") == sent.replace(" ", "")  # exactly what the player got


async def test_the_transcript_is_moderated(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    fake_upstream.audio.script_transcripts("Oh damn, fix it")
    options = {"entry_points": True, "extra__moderation": MODERATION["moderation"]}
    async with await start_bridge(fake_upstream, tmp_path, **options) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("smith", SMITH)
            reply = await client.speech("smith", "p1", speech_wav(0.3))
            with pytest.raises(NpcBridgeError) as caught:
                await reply.text()
    assert reply.transcript == "Oh damn, fix it"
    assert caught.value.code == "filtered" and not fake_upstream.requests
