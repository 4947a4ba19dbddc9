"""espeak-ng, the offline voice: text to a WAV file with the local ``espeak-ng`` binary (no
network, no key, no cost). Registered only when the binary is installed and works."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

from .audio import SpeechRequest, TranscriptionRequest
from .base import Reason, UpstreamError

#: espeak-ng's words per minute at speed 1.0
BASE_WPM = 175


def espeak_works(binary: str = "espeak-ng") -> bool:
    """Whether ``binary`` is installed and synthesises a word (checked once at start-up)."""
    path = shutil.which(binary)
    if path is None:
        return False
    try:
        done = subprocess.run(
            [path, "--stdout", "ok"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout[:4] == b"RIFF"


class EspeakProvider:
    """Speech from the ``espeak-ng`` binary; it cannot transcribe."""

    name = "espeak"

    def __init__(self, binary: str = "espeak-ng", timeout_s: float = 10.0) -> None:
        self.binary = shutil.which(binary) or binary
        self.timeout_s = timeout_s

    async def speech(self, request: SpeechRequest) -> bytes:
        """One synthesis: the voice is an espeak-ng voice name (``en``, ``en-us``, ...)."""
        wpm = int(BASE_WPM * (request.speed or 1.0))
        voice = request.voice if request.voice.replace("-", "").isalnum() else "en"
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                "--stdout",
                "-v",
                voice,
                "-s",
                str(wpm),
                "--",
                request.text,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError:
            raise UpstreamError("espeak-ng could not start", reason=Reason.CONNECT) from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise UpstreamError("espeak-ng did not finish", timeout=True) from None
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0 or out[:4] != b"RIFF":
            raise UpstreamError("espeak-ng failed", reason=Reason.FAILED)
        return out

    async def transcribe(self, request: TranscriptionRequest) -> str:
        """espeak-ng has no speech recognition."""
        raise UpstreamError("espeak-ng cannot transcribe", reason=Reason.UNAVAILABLE)

    async def aclose(self) -> None:
        """Nothing to release."""
