"""Audio as bytes, without I/O: WAV files read and written (PCM16), raw PCM16 checked, and the
mouth envelope (RMS at 50 Hz) an engine moves lips by.

Every function here is pure and fast enough to run on the event loop for one spoken unit (a
few seconds of audio); the array maths is the standard library's (``array``, ``audioop`` is
gone in 3.13)."""

from __future__ import annotations

import math
import struct
import sys
from array import array
from dataclasses import dataclass
from operator import mul

#: mouth envelope frames per second (one byte per 20 ms)
MOUTH_HZ = 50
#: speech RMS sits far below full scale: this gain maps ordinary speech to an open mouth
MOUTH_GAIN = 4.0
#: samples per second the envelope reads
ENVELOPE_RATE = 8000


class AudioError(ValueError):
    """Audio that cannot be used; the message names the problem (never the bytes)."""


@dataclass(frozen=True)
class Pcm:
    """Little-endian signed 16-bit PCM with its rate and channel count."""

    data: bytes
    sample_rate: int
    channels: int = 1

    @property
    def frames(self) -> int:
        """Samples per channel."""
        return len(self.data) // (2 * self.channels)

    @property
    def duration_ms(self) -> int:
        """Length in whole milliseconds."""
        return self.frames * 1000 // self.sample_rate if self.sample_rate else 0

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def read_wav(data: bytes) -> Pcm:
    """The PCM16 inside a RIFF/WAVE file; :class:`AudioError` for anything else."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            if len(body) < 16:
                raise AudioError("corrupt WAV header (short fmt chunk)")
            fmt = struct.unpack_from("<HHIIHH", body)
        elif chunk == b"data":
            # streamed WAV (TTS servers) may declare 0 or 0xFFFFFFFF: take what is there
            pcm = data[pos + 8 :] if size in (0, 0xFFFFFFFF) else body
            break
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise AudioError("corrupt WAV header (no fmt or data chunk)")
    tag, channels, rate, _byte_rate, _block, bits = fmt
    if tag not in (1, 0xFFFE) or bits != 16:
        raise AudioError("WAV audio must be 16-bit PCM")
    if not 1 <= channels <= 2 or not 8000 <= rate <= 48000:
        raise AudioError("WAV audio must be mono or stereo at 8000 to 48000 Hz")
    return Pcm(pcm[: len(pcm) - len(pcm) % (2 * channels)], rate, channels)


def write_wav(pcm: Pcm) -> bytes:
    """``pcm`` as a RIFF/WAVE file."""
    block = 2 * pcm.channels
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm.data),
        b"WAVE",
        b"fmt ",
        16,
        1,
        pcm.channels,
        pcm.sample_rate,
        pcm.sample_rate * block,
        block,
        16,
        b"data",
        len(pcm.data),
    )
    return header + pcm.data


def raw_pcm(data: bytes, sample_rate: int, channels: int) -> Pcm:
    """Raw PCM16 as declared; :class:`AudioError` when the bytes do not fit the declaration."""
    if data[:4] == b"RIFF":
        raise AudioError("format 'pcm16' declared but the audio is a WAV file")
    if len(data) % (2 * channels):
        raise AudioError("pcm16 audio must hold whole 16-bit samples for every channel")
    return Pcm(data, sample_rate, channels)


def _samples(data: bytes) -> array[int]:
    values = array("h")
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def mouth_envelope(pcm: Pcm, hz: int = MOUTH_HZ) -> bytes:
    """Mouth openness per 1/``hz`` s of ``pcm``: the RMS of the window over full scale, times
    :data:`MOUTH_GAIN`, clipped, as one byte 0..255 (a last partial window counts). Loudness
    needs no more than 8000 samples a second, so every ``sample_rate // 8000``-th sample is
    read (it keeps the envelope cheap: a few seconds of speech in about a millisecond)."""
    values = _samples(pcm.data)
    window = max(1, pcm.sample_rate // hz) * pcm.channels
    stride = max(1, pcm.sample_rate // ENVELOPE_RATE) * pcm.channels
    out = bytearray()
    for start in range(0, len(values), window):
        chunk = values[start : start + window : stride]
        rms = math.sqrt(sum(map(mul, chunk, chunk)) / len(chunk)) / 32768
        out.append(min(255, round(min(1.0, rms * MOUTH_GAIN) * 255)))
    return bytes(out)
