"""The voice feature's parts without sockets: spoken units, WAV/PCM checks, frames and the mouth
envelope; and speech models through the gateway (fallback, catalog prices)."""

from __future__ import annotations

import struct

import pytest
from voice_helpers import SMITH, speech_wav

from npcbridge.features.voice.frames import audio_frames
from npcbridge.features.voice.segment import Segmenter
from npcbridge.features.voice.wav import AudioError, Pcm, mouth_envelope, raw_pcm, read_wav
from npcbridge.gateway.catalog import default_audio_models
from npcbridge.testing.bridge import Bridge


def _units(pieces: list[str], first_words: int = 3, limit: int = 200) -> list[str]:
    segmenter = Segmenter(first_words, limit)
    out = [unit for piece in pieces for unit in segmenter.feed(piece)]
    return out + segmenter.flush()


def test_first_a_short_clause_then_whole_sentences() -> None:
    pieces = ["Well", " now, my", " lad, the mine", " is closed. It", " flooded! Go", " home"]
    assert _units(pieces) == ["Well now, my lad,", "the mine is closed.", "It flooded!", "Go home"]


def test_a_short_first_sentence_goes_at_once() -> None:
    segmenter = Segmenter(3, 200)
    assert segmenter.feed("Aye. ") == ["Aye."]
    assert segmenter.feed("Go, lad, go ") == []  # only the first unit ends at a clause
    assert segmenter.flush() == ["Go, lad, go"]


def test_numbers_and_unfinished_punctuation_do_not_cut() -> None:
    assert _units(["It costs 3.5 gold", ", friend.", "..."]) == ["It costs 3.5 gold,", "friend...."]


def test_nothing_to_say_is_not_a_unit() -> None:
    assert _units(["... ", " - ", "!"]) == []


def test_no_unit_passes_the_limit() -> None:
    units = _units(["word " * 60 + "end."], limit=50)
    assert all(len(unit) <= 50 for unit in units)
    assert " ".join(units) == ("word " * 60 + "end.").strip()


def test_wav_round_trip_and_problems() -> None:
    wav = speech_wav(0.25)
    pcm = read_wav(wav)
    assert (pcm.sample_rate, pcm.channels, pcm.duration_ms) == (16000, 1, 250)
    with pytest.raises(AudioError, match="not a WAV file"):
        read_wav(b"OggS" + bytes(40))
    with pytest.raises(AudioError, match="corrupt WAV header"):
        read_wav(wav[:30])
    stereo_24bit = bytearray(wav)
    struct.pack_into("<H", stereo_24bit, 34, 24)
    with pytest.raises(AudioError, match="16-bit PCM"):
        read_wav(bytes(stereo_24bit))
    with pytest.raises(AudioError, match="whole 16-bit samples"):
        raw_pcm(b"\x00\x00\x00\x00\x00\x00", 16000, 2)


def test_mouth_envelope_follows_loudness() -> None:
    loud = struct.pack("<480h", *([12000, -12000] * 240))
    pcm = Pcm(bytes(960) + loud, 24000)
    assert list(mouth_envelope(pcm)) == [0, 255]
    quiet = Pcm(struct.pack("<480h", *([1000, -1000] * 240)), 24000)
    assert 0 < mouth_envelope(quiet)[0] < 40


def test_frames_split_at_whole_mouth_windows() -> None:
    pcm = Pcm(bytes(2 * 24000 * 3), 24000)  # three seconds
    frames = audio_frames("t-1", "smith", 4, "Aye.", pcm, 48000)
    assert [f["seq"] for f in frames] == [4, 5, 6] and [f["text"] for f in frames] == [
        "Aye.",
        "",
        "",
    ]
    assert {len(f["audio"]) for f in frames} == {48000}
    assert {f["duration_ms"] for f in frames} == {1000} and {len(f["mouth"]) for f in frames} == {
        50
    }


def test_the_catalog_prices_speech() -> None:
    tts, turbo, large = default_audio_models()
    assert tts.kind == "tts" and tts.max_input_chars == 200 and "troy" in tts.voices
    assert tts.cost_usd(chars=1_000_000) == pytest.approx(22.0)
    assert turbo.cost_usd(seconds=3600) == pytest.approx(0.04)
    assert turbo.fallbacks == [large.id]


async def test_transcription_falls_back_to_the_next_model(bridge: Bridge) -> None:
    bridge.fake.audio.fail_transcriptions(404)
    bridge.fake.audio.script_transcripts("[[reply:Aye.]]")
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.speech("smith", "p1", speech_wav(0.3))
        assert await reply.text() == "Aye."
    models = [r.model for r in bridge.fake.audio.requests]
    assert models == ["whisper-large-v3-turbo", "whisper-large-v3"]
