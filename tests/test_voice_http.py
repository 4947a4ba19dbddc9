"""Voice over the HTTP transport (JSON bodies): the player's speech goes up as base64, the
transcript, the reply and its audio frames (base64) come back in order, before ``reply.end``."""

from __future__ import annotations

import base64

from voice_helpers import speech_wav

from npcbridge.features.voice.wav import MOUTH_HZ
from npcbridge.testing.bridge import Bridge
from tests.http_helpers import HELLO, SMITH, Transport


async def test_speech_and_audio_over_http_json(bridge: Bridge) -> None:
    bridge.fake.audio.script_transcripts("[[reply:Aye, lad. Go on.]] hello")
    http = Transport(bridge.server.port)
    key = (await http.call("POST", "/v1/sessions", HELLO)).json()["session"]
    assert (await http.post(key, SMITH)).status == 200
    audio = base64.b64encode(speech_wav(0.5)).decode()
    speech = {"type": "speech", "id": "v", "npc": "smith", "player": "p1", "audio": audio}
    answer = await http.post(key, {**speech, "voice": True}, "?wait=10")
    messages = answer.json()["messages"]
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "transcript" and kinds[1] == "reply.start" and kinds[-1] == "reply.end"
    frames = [m for m in messages if m["type"] == "reply.audio"]
    assert [f["text"] for f in frames if f["text"]] == ["Aye, lad.", "Go on."]
    for frame in frames:
        pcm, mouth = base64.b64decode(frame["audio"]), base64.b64decode(frame["mouth"])
        assert len(pcm) == 2 * 24000 * frame["duration_ms"] // 1000
        assert len(mouth) == -(-frame["duration_ms"] * MOUTH_HZ // 1000)
    heard = bridge.fake.audio.requests[0]
    assert heard.kind == "transcription" and heard.file == speech_wav(0.5)
