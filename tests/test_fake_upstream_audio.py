"""The fake upstream's audio endpoints, driven by the real ``openai`` SDK: speech whose length
follows the text (deterministic WAV), Groq's 400s, scripted transcripts, latency and failure
knobs, recorded requests and the HTTP control endpoint."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from npcbridge.features.voice.wav import Pcm, read_wav, write_wav
from npcbridge.testing.fake_upstream import FakeUpstream

TTS = "canopylabs/orpheus-v1-english"
STT = "whisper-large-v3-turbo"


def sdk(fake: FakeUpstream) -> AsyncOpenAI:
    """The real SDK, no retries."""
    return AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)


async def speak(fake: FakeUpstream, text: str, voice: str = "troy") -> bytes:
    """The WAV the fake answers for ``text``."""
    async with sdk(fake) as client:
        answer = await client.audio.speech.create(
            model=TTS, voice=voice, input=text, response_format="wav"
        )
        return answer.content


async def test_speech_is_a_wav_whose_length_follows_the_text(fake_upstream: FakeUpstream) -> None:
    short = read_wav(await speak(fake_upstream, "Aye."))
    long = read_wav(await speak(fake_upstream, "Aye, lad. Leave it on the anvil."))
    assert short.sample_rate == 24000 and short.channels == 1
    assert short.duration_ms == 4 * 60 and long.duration_ms == 32 * 60
    assert await speak(fake_upstream, "Aye.") == await speak(fake_upstream, "Aye.")
    record = fake_upstream.audio.requests[0]
    assert record.kind == "speech" and record.model == TTS and record.fields["input"] == "Aye."
    assert record.fields["voice"] == "troy" and record.outcome == "completed"


@pytest.mark.parametrize(
    ("text", "voice", "reason"),
    [("x" * 201, "troy", "at most 200"), ("Aye.", "nobody", "voice must be one of")],
)
async def test_speech_refuses_what_groq_refuses(
    fake_upstream: FakeUpstream, text: str, voice: str, reason: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await speak(fake_upstream, text, voice)
    assert reason in caught.value.message


async def test_transcripts_follow_the_script(fake_upstream: FakeUpstream) -> None:
    fake_upstream.audio.script_transcripts("Can you fix my sword?")
    wav = write_wav(Pcm(bytes(3200), 16000))
    async with sdk(fake_upstream) as client:
        first = await client.audio.transcriptions.create(model=STT, file=("p1.wav", wav))
        second = await client.audio.transcriptions.create(model=STT, file=("p1.wav", wav))
        with pytest.raises(openai.BadRequestError):
            await client.audio.transcriptions.create(model=STT, file=("p1.wav", b"not audio"))
    assert first.text == "Can you fix my sword?" and second.text == "Hello there."
    record = fake_upstream.audio.requests[0]
    assert record.kind == "transcription" and record.file == wav and record.filename == "p1.wav"
    assert record.model == STT


async def test_failures_and_latency(fake_upstream: FakeUpstream) -> None:
    fake_upstream.audio.fail_speech(503, 429)
    fake_upstream.audio.fail_transcriptions(500)
    with pytest.raises(openai.InternalServerError):
        await speak(fake_upstream, "Aye.")
    with pytest.raises(openai.RateLimitError) as caught:
        await speak(fake_upstream, "Aye.")
    assert caught.value.response.headers["retry-after"] == "1"
    async with sdk(fake_upstream) as client:
        with pytest.raises(openai.InternalServerError):
            await client.audio.transcriptions.create(
                model=STT, file=("a.wav", write_wav(Pcm(bytes(320), 16000)))
            )
    fake_upstream.audio.first_byte_ms = 150
    started = time.perf_counter()
    await speak(fake_upstream, "Aye.")
    assert time.perf_counter() - started >= 0.15
    assert [r.outcome for r in fake_upstream.audio.requests] == [
        "error",
        "error",
        "error",
        "completed",
    ]


async def test_a_stalled_speech_request_counts_as_a_disconnect(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.audio.fail_speech("stall")
    task = asyncio.create_task(speak(fake_upstream, "Aye."))
    await fake_upstream.wait_for(lambda: bool(fake_upstream.audio.requests))
    task.cancel()
    await fake_upstream.wait_disconnect()
    assert fake_upstream.audio.requests[0].outcome == "disconnected"


async def test_http_control(fake_upstream: FakeUpstream) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"transcripts": ["[[reply:Aye.]] hello"], "fail_speech": [500], "ms_per_char": 10}
        async with http.post(f"{fake_upstream.url}/_fake/audio", json=body) as answer:
            state = await answer.json()
        async with http.post(f"{fake_upstream.url}/_fake/audio", json=[1]) as bad:
            assert bad.status == 400
    assert state["knobs"]["ms_per_char"] == 10.0
    assert list(fake_upstream.audio.transcripts) == ["[[reply:Aye.]] hello"]
    with pytest.raises(openai.InternalServerError):
        await speak(fake_upstream, "Aye.")
    assert read_wav(await speak(fake_upstream, "Aye.")).duration_ms == 40
    fake_upstream.reset()
    assert not fake_upstream.audio.requests and not fake_upstream.audio.transcripts
