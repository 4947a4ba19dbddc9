"""npcbridge.love_voice in a real, headless LÖVE 11: the checks of ``tests/love_voice/main.lua``,
and what OpenAL really played.

No sound card is needed: OpenAL Soft (LÖVE's audio) is told by ``ALSOFT_CONF`` to use its
``wave`` backend, which mixes in real time into a WAV file instead of a device. So the checks
run the real QueueableSource (buffers, play, stop, positions), and this test then reads the file:
the streamed frames came out as one stretch of sound with no gap, louder frame after louder frame
(their order), and a stopped reply went silent at once.

The game's live checks run against the test stack (a real server with the fake upstream):
a voiced reply plays in full, barge-in cancels it and stops the sound, recorded SoundData goes
out as a chunked speech and comes back as a transcript. Capture from a microphone cannot run
headless (the wave backend lists a capture device that does not start); the game checks that the
recorder says so, and the live check sends real SoundData through the recorder.

Needs: apt ``love`` (LÖVE 11.4). A missing ``love`` skips locally and fails under CI.
"""

from __future__ import annotations

import array
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from stack_process import start_stack

ROOT = Path(__file__).resolve().parent.parent
GAME = ROOT / "tests" / "love_voice"

pytestmark = pytest.mark.lua


def _love() -> str:
    path = shutil.which("love")
    if path is None:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("love is not installed (CI=true: the LÖVE suite must run)")
        pytest.skip("love is not installed")
    return path


def read_wave(path: Path) -> tuple[int, list[float]]:
    """(sample rate, first channel as floats -1..1) of OpenAL's WAV (PCM 16 or float 32)."""
    blob = path.read_bytes()
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WAVE", "not a WAV file"
    pos, channels, rate, bits, data = 12, 0, 0, 0, b""
    while pos + 8 <= len(blob):
        chunk, size = blob[pos : pos + 4], struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        body = blob[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
        elif chunk == b"data":
            data = body
        pos += 8 + size + (size & 1)
    samples: array.array[float] | array.array[int]
    if bits == 32:
        samples, scale = array.array("f", data), 1.0
    elif bits == 16:
        samples, scale = array.array("h", data), 1 / 32768
    else:
        pytest.fail(f"unexpected WAV sample size {bits}")
    return rate, [v * scale for v in samples[::channels]]


def sound_stretches(rate: int, mono: list[float], gap_s: float = 0.005) -> list[tuple[int, int]]:
    """(first, last) sample index of each stretch of sound; silence over ``gap_s`` splits them."""
    gap, out = int(rate * gap_s), []
    start = last = -1
    for i, v in enumerate(mono):
        if abs(v) > 1e-3:
            if start < 0:
                start = i
            elif i - last > gap:
                out.append((start, last))
                start = i
            last = i
    if start >= 0:
        out.append((start, last))
    return out


def run_game(tmp_path: Path, env_extra: dict[str, str]) -> tuple[str, Path]:
    """Run the check game headless; (stdout, the WAV OpenAL wrote)."""
    wav = tmp_path / "played.wav"
    conf = tmp_path / "alsoft.conf"
    conf.write_text(f"[general]\ndrivers=wave\n[wave]\nfile={wav}\n", encoding="utf-8")
    env = dict(os.environ, ALSOFT_CONF=str(conf), **env_extra)
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    try:
        result = subprocess.run(
            [_love(), str(GAME)], env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"love timed out:\n{exc.stdout!r}")
    output = result.stdout
    failed = [line for line in output.splitlines() if " FAIL " in line]
    assert not failed, "\n".join(failed) + "\n---\n" + (output + result.stderr)[-3000:]
    assert result.returncode == 0, (output + result.stderr)[-3000:]
    assert output.strip().endswith("DONE 0"), output[-3000:]
    return output, wav


def test_love_voice_plays_gaplessly_in_order_and_stops(tmp_path: Path) -> None:
    """The offline checks pass, and the sound OpenAL played is what they promise."""
    output, wav = run_game(tmp_path, {})
    for name in (
        "sound_data_has_the_frame_samples",
        "plays_frames_in_order_gaplessly",
        "plays_again_after_running_dry",
        "stop_silences_at_once",
        "changes_source_for_another_sample_rate",
        "recorder_without_a_working_microphone",
    ):
        assert f"RESULT {name} ok" in output
    rate, mono = read_wave(wav)
    stretches = sound_stretches(rate, mono)
    assert len(stretches) >= 4, stretches
    # 1. four frames of 0.15 s streamed in while playing: one stretch of 0.6 s, no gap
    first, last = stretches[0]
    length = (last - first + 1) / rate
    assert abs(length - 0.6) < 0.01, f"the four frames played for {length:.3f} s"
    # ... in order: each quarter louder than the one before (amplitudes 0.1, 0.3, 0.5, 0.7)
    quarter = (last - first + 1) // 4
    peaks = [
        max(abs(v) for v in mono[first + k * quarter : first + (k + 1) * quarter]) for k in range(4)
    ]
    assert peaks == sorted(peaks) and peaks[0] * 4 < peaks[3], f"peaks {peaks}"
    # 2. a frame, silence, a frame: each plays once (what was played is not played again)
    for first, last in stretches[1:3]:
        assert abs((last - first + 1) / rate - 0.1) < 0.01, f"{stretches[1:3]} at {rate} Hz"
    # 3. five frames of 0.3 s, stopped after about 0.2 s: well under 1.5 s of sound
    first, last = stretches[3]
    stopped = (last - first + 1) / rate
    assert 0.15 < stopped < 0.4, f"the stopped reply played {stopped:.3f} s"


def test_love_voice_against_the_server(tmp_path: Path) -> None:
    """With a real server (fake upstream speaking): a voiced reply plays in full, barge-in
    cancels it and keeps what was heard, recorded SoundData comes back as a transcript."""
    with start_stack() as stack:
        output, _ = run_game(tmp_path, {"NPCBRIDGE_WS_URL": stack.info["ws_url"]})
    for name in (
        "live_voiced_reply_plays",
        "live_barge_in_cancels_and_stops",
        "live_recorded_sounddata_goes_out_as_speech",
    ):
        assert f"RESULT {name} ok" in output


def test_love_demo_speaks(tmp_path: Path) -> None:
    """The LÖVE demo, scripted with its audio on: both NPCs' replies are spoken to their end."""
    wav = tmp_path / "demo.wav"
    conf = tmp_path / "alsoft.conf"
    conf.write_text(f"[general]\ndrivers=wave\n[wave]\nfile={wav}\n", encoding="utf-8")
    with start_stack() as stack:
        env = dict(
            os.environ,
            ALSOFT_CONF=str(conf),
            NPCBRIDGE_WS_URL=stack.info["ws_url"],
            NPCBRIDGE_DEMO_SCRIPTED="1",
            NPCBRIDGE_DEMO_VOICE="1",
            NPCBRIDGE_DEMO_LINE="Fix my sword? [[reply:Aye lad, leave it on the anvil.]]",
        )
        env.setdefault("XDG_RUNTIME_DIR", "/tmp")
        result = subprocess.run(
            [_love(), str(ROOT / "examples" / "love-demo")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    output = result.stdout
    assert result.returncode == 0, (output + result.stderr)[-3000:]
    assert output.strip().endswith("OK"), output
    for name in ("Brom", "Aelindra"):
        spoke = [line for line in output.splitlines() if line.startswith(f"{name} spoke ")]
        assert spoke, output
        seconds = float(spoke[0].rsplit("(", 1)[1].split(" ")[0])
        assert seconds > 0.5, spoke
    rate, mono = read_wave(wav)
    heard = sum(last - first + 1 for first, last in sound_stretches(rate, mono)) / rate
    assert heard > 2.0, f"{heard:.2f} s of sound in the WAV"
