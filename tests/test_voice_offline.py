"""Voice without an upstream: the real espeak-ng binary speaks (``voice`` is announced; the
player's speech is not, as there is no offline transcription); without espeak-ng nothing is
announced and replies are text. scripts/test installs espeak-ng."""

from __future__ import annotations

import pytest
from voice_helpers import SMITH, audio_of, speech_wav

from npcbridge.client import NpcBridgeError
from npcbridge.features.voice.wav import MOUTH_HZ
from npcbridge.providers import espeak
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream


async def test_espeak_speaks_offline(fake_upstream: FakeUpstream, tmp_path) -> None:
    async with await start_bridge(fake_upstream, tmp_path, upstream__api_key="") as bridge:
        async with await bridge.client() as client:
            features = client.welcome["features"]
            assert "offline" in features and "voice" in features
            assert "speech_in" not in features
            await client.define_npc("smith", SMITH)
            reply = await client.say_audio("smith", "p1", "Hello there")
            text = await reply.text()
            with pytest.raises(NpcBridgeError) as caught:
                await (await client.speech("smith", "p1", speech_wav(0.2))).text()
    frames = audio_of(reply)
    assert frames and frames[0]["sample_rate"] == 22050 and frames[0]["channels"] == 1
    assert "".join(f["text"] for f in frames).replace(" ", "") == text.replace(" ", "")
    for frame in frames:
        assert frame["duration_ms"] > 0 and len(frame["audio"]) <= 48000
        assert len(frame["mouth"]) == -(-frame["duration_ms"] * MOUTH_HZ // 1000)
    assert max(max(f["mouth"]) for f in frames) > 50  # espeak's speech opens the mouth
    assert reply.end is not None and reply.end["voice"]["cost_usd"] == 0.0
    assert caught.value.code == "unknown_type"
    assert not fake_upstream.audio.requests and not fake_upstream.requests


async def test_no_voice_without_espeak_offline(
    fake_upstream: FakeUpstream, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(espeak.shutil, "which", lambda name: None)
    async with await start_bridge(fake_upstream, tmp_path, upstream__api_key="") as bridge:
        async with await bridge.client() as client:
            assert "voice" not in client.welcome["features"]
            await client.define_npc("smith", SMITH)
            reply = await client.say_audio("smith", "p1", "Hello there")
            await reply.text()
    assert not audio_of(reply) and "voice" not in (reply.end or {})
