"""The Python client's voice: audio frames from the vectors, the text and the audio of one reply
iterated at once, ``say_audio`` and the speech helpers (``speech``, ``start_speech``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from voice_helpers import SMITH, speech_wav

from npcbridge.client import AudioFrame
from npcbridge.protocol import unpack
from npcbridge.testing.bridge import Bridge

VECTORS = Path(__file__).parent / "vectors"


def test_an_audio_frame_reads_the_vector() -> None:
    frame = AudioFrame.from_frame(unpack((VECTORS / "reply.audio.msgpack").read_bytes()))
    twin = json.loads((VECTORS / "reply.audio.json").read_text())
    assert frame.pcm == bytes.fromhex(twin["audio"]["$bin"]) and len(frame.pcm) == 96
    assert (frame.seq, frame.text, frame.sample_rate, frame.channels) == (0, "Aye, lad.", 24000, 1)
    assert frame.duration_ms == 2 and frame.mouth == bytes.fromhex(twin["mouth"]["$bin"])
    assert frame.openness() == [frame.mouth[0] / 255] and frame.mouth_hz == 50


async def test_text_and_audio_of_one_reply_at_once(bridge: Bridge) -> None:
    bridge.fake.tokens_per_s = 100
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say_audio("smith", "p1", "[[reply:Aye, lad, it is done. Go on.]]")

        async def text() -> str:
            return "".join([piece async for piece in reply])

        async def audio() -> list[AudioFrame]:
            return [frame async for frame in reply.audio()]

        said, frames = await asyncio.wait_for(asyncio.gather(text(), audio()), 10)
    assert said == "Aye, lad, it is done. Go on."
    assert [f.text for f in frames if f.text] == ["Aye, lad, it is done.", "Go on."]
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert sum(f.duration_ms for f in frames) == reply.end["voice"]["audio_ms"]


async def test_speech_helpers_send_what_the_protocol_says(bridge: Bridge) -> None:
    bridge.fake.audio.script_transcripts("[[reply:One.]]", "[[reply:Two.]]")
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        whole = await client.speech("smith", "p1", speech_wav(0.2), urgency="realtime")
        assert await whole.text() == "One." and whole.transcript == "[[reply:One.]]"
        upload = await client.start_speech("smith", "p1", format="pcm16", voice=True)
        await upload.send(bytes(1600))
        await upload.send(bytes(1600))
        chunked = await upload.end()
        assert await chunked.text() == "Two." and upload.id == chunked.id
    heard = [r for r in bridge.fake.audio.requests if r.kind == "transcription"]
    assert [len(r.file) for r in heard] == [44 + 6400, 44 + 3200]
    spoken = [r.fields["input"] for r in bridge.fake.audio.requests if r.kind == "speech"]
    assert spoken == ["Two."]  # only the chunked request asked for voice
