"""The player's speech in, end to end: ``speech`` and ``speech.start``/``chunk``/``end`` →
npcbridge → the fake upstream's /audio/transcriptions (real openai SDK) → ``transcript`` →
the turn. Bad audio gets a clear ``bad_request`` naming the problem. docs/protocol.md, "Voice"."""

from __future__ import annotations

import re
import struct

import pytest
from voice_helpers import SMITH, audio_of, of_type, speech_wav

from npcbridge.client import NpcBridgeError
from npcbridge.features.voice.wav import read_wav
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from tests.http_helpers import request

STT = "whisper-large-v3-turbo"
TTS = "canopylabs/orpheus-v1-english"


async def test_a_whole_utterance_is_transcribed_then_answered(bridge: Bridge) -> None:
    bridge.fake.audio.script_transcripts("Can you fix my sword? [[reply:Aye, lad.]]")
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.speech("smith", "p1", speech_wav(1.0), voice=True)
        assert await reply.text() == "Aye, lad."
    assert reply.transcript == "Can you fix my sword? [[reply:Aye, lad.]]"
    assert reply.frames[0]["type"] == "transcript" and reply.frames[1]["type"] == "reply.start"
    assert [f["text"] for f in audio_of(reply)] == ["Aye, lad."]
    heard = bridge.fake.audio.requests[0]
    assert heard.kind == "transcription" and heard.model == STT
    assert read_wav(heard.file).duration_ms == 1000
    chat = bridge.fake.requests[-1].body["messages"]
    assert chat[-1] == {"role": "user", "content": reply.transcript}
    assert bridge.app.store is not None
    stored = await bridge.app.store.recent_turns("smith", "p1", 5)
    assert [t.user_text for t in stored] == [reply.transcript]


async def test_the_configured_language_goes_upstream(fake_upstream: FakeUpstream, tmp_path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, extra={"voice": {"language": "de"}}
    ) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            await (await client.speech("smith", "p1", speech_wav(0.2))).text()
    assert fake_upstream.audio.requests[0].fields["language"] == "de"


async def test_push_to_talk_chunks_in_pcm16(bridge: Bridge) -> None:
    bridge.fake.audio.script_transcripts("[[reply:Hm.]] hello")
    pcm = read_wav(speech_wav(0.9)).data
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        upload = await client.start_speech("smith", "p1", format="pcm16", sample_rate=16000)
        for start in range(0, len(pcm), 9600):
            await upload.send(pcm[start : start + 9600])
        reply = await upload.end()
        assert await reply.text() == "Hm."
    sent = read_wav(bridge.fake.audio.requests[0].file)
    assert sent.data == pcm and sent.sample_rate == 16000
    assert of_type(reply, "transcript")[0]["text"] == "[[reply:Hm.]] hello"


def _wav_8bit() -> bytes:
    wav = bytearray(speech_wav(0.1))
    struct.pack_into("<H", wav, 34, 8)  # bits per sample
    return bytes(wav)


@pytest.mark.parametrize(
    ("audio", "fmt", "problem"),
    [
        (b"", "wav", "empty audio"),
        (b"\x00\x01" * 100, "wav", "not a WAV file"),
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk", "wav", "corrupt WAV header"),
        (_wav_8bit(), "wav", "16-bit PCM"),
        (speech_wav(0.1), "pcm16", "declared but the audio is a WAV file"),
        (b"\x00\x01\x02", "pcm16", "whole 16-bit samples"),
        (speech_wav(0.0), "wav", "empty audio"),
    ],
)
async def test_bad_audio_is_a_clear_bad_request(
    bridge: Bridge, audio: bytes, fmt: str, problem: str
) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.speech("smith", "p1", audio, format=fmt)
        with pytest.raises(NpcBridgeError) as caught:
            await reply.text()
        pong = await client.ping()  # the connection serves on
    error = caught.value.frame
    assert error["code"] == "bad_request" and error["refused"] == "speech"
    assert problem in error["message"] and "field 'audio'" in error["message"]
    assert pong["type"] == "pong" and not bridge.fake.audio.requests


async def test_too_long_speech_is_refused(fake_upstream: FakeUpstream, tmp_path) -> None:
    extra = {"voice": {"max_speech_s": 0.5}}
    async with await start_bridge(fake_upstream, tmp_path, extra=extra) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("smith", SMITH)
            with pytest.raises(NpcBridgeError) as whole:
                await (await client.speech("smith", "p1", speech_wav(0.8))).text()
            upload = await client.start_speech("smith", "p1", format="pcm16")
            await upload.send(bytes(32000))  # one second at 16 kHz
            with pytest.raises(NpcBridgeError) as chunked:
                await (await upload.end()).text()
    assert "longer than 0.5 seconds" in whole.value.message
    assert whole.value.frame["refused"] == "speech"
    assert "longer than 0.5 seconds" in chunked.value.message
    assert "refused" not in chunked.value.frame  # it ends the accepted speech.start
    assert not fake_upstream.audio.requests


async def test_chunk_rules(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        await client.send({"type": "speech.chunk", "id": "nope", "seq": 0, "audio": b"\x00\x00"})
        stray = await client.unsolicited.get()
        assert stray["refused"] == "speech.chunk" and "no utterance" in stray["message"]
        upload = await client.start_speech("smith", "p1", format="pcm16")
        await upload.send(bytes(3200))
        upload.seq = 5  # a chunk goes missing
        await upload.send(bytes(3200))
        with pytest.raises(NpcBridgeError) as caught:
            await (await upload.end()).text()
    assert "out of order" in caught.value.message and "refused" not in caught.value.frame


async def test_unknown_npc_is_refused_before_listening(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        upload = await client.start_speech("ghost", "p1")
        with pytest.raises(NpcBridgeError) as caught:
            await upload.reply.text()
    assert caught.value.code == "unknown_npc" and caught.value.frame["refused"] == "speech.start"


async def test_cancel_while_recording_ends_the_request(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        upload = await client.start_speech("smith", "p1", format="pcm16")
        await upload.send(bytes(3200))
        await upload.reply.cancel()
        assert await upload.reply.text() == ""
    assert upload.reply.end is not None and upload.reply.end["finish"] == "cancelled"


async def test_transcription_failure_and_empty_transcript(bridge: Bridge) -> None:
    bridge.fake.audio.fail_transcriptions(400)
    bridge.fake.audio.script_transcripts("   ")
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        with pytest.raises(NpcBridgeError) as failed:
            await (await client.speech("smith", "p1", speech_wav(0.2))).text()
        with pytest.raises(NpcBridgeError) as empty:
            await (await client.speech("smith", "p1", speech_wav(0.2))).text()
    assert failed.value.code == "upstream_error" and "HTTP 400" in failed.value.message
    assert empty.value.code == "bad_request" and "no speech recognised" in empty.value.message


async def test_audio_seconds_per_player_per_day(fake_upstream: FakeUpstream, tmp_path) -> None:
    options = {"budget__per_player_audio_s_per_day": 1.5}
    async with await start_bridge(fake_upstream, tmp_path, **options) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("smith", SMITH)
            await (await client.speech("smith", "p1", speech_wav(1.0))).text()
            with pytest.raises(NpcBridgeError) as caught:
                await (await client.speech("smith", "p1", speech_wav(1.0))).text()
            await (await client.speech("smith", "p2", speech_wav(1.0))).text()
    assert caught.value.code == "budget_exceeded" and "seconds of speech" in caught.value.message
    assert len(fake_upstream.audio.requests) == 2


async def test_speech_requests_count_in_the_upstream_metrics(bridge: Bridge) -> None:
    """Transcriptions and syntheses are counted as the text's requests are, under their speech
    model: outcome (a failure's status too), latency and cost."""
    bridge.fake.audio.script_transcripts("Can you fix my sword? [[reply:Aye, lad.]]")
    bridge.fake.audio.fail_speech(503)  # the first synthesis fails once, then is retried
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.speech("smith", "p1", speech_wav(1.0), voice=True)
        assert await reply.text() == "Aye, lad."
    metrics = (await request(bridge.server.port, "GET", "/metrics")).body.decode()

    def value(series: str) -> float:
        found = re.search(re.escape(series) + r" (\S+)", metrics)
        assert found, series
        return float(found.group(1))

    requests = "npcbridge_upstream_requests_total"
    assert value(f'{requests}{{model="{STT}",outcome="ok"}}') == 1
    assert value(f'{requests}{{model="{TTS}",outcome="503"}}') == 1
    assert value(f'{requests}{{model="{TTS}",outcome="ok"}}') == 1
    assert value(f'npcbridge_upstream_latency_seconds_count{{model="{TTS}"}}') == 2
    assert value(f'npcbridge_cost_usd_total{{model="{STT}"}}') > 0
    assert value(f'npcbridge_cost_usd_total{{model="{TTS}"}}') == pytest.approx(
        len("Aye, lad.") * 22 / 1_000_000
    )
