"""The fake upstream's audio endpoints, as Groq serves them: ``POST /audio/speech`` (text to
WAV) and ``POST /audio/transcriptions`` (multipart WAV upload to text), under ``/v1`` and
``/openai/v1``; the real ``openai`` SDK's ``audio.speech`` / ``audio.transcriptions`` talk to
them unchanged.

Speech is deterministic: ``ms_per_char`` ms of audio per character of ``input`` (a tone per
letter, silence for spaces and punctuation, so the mouth envelope moves), PCM16 mono WAV at
``sample_rate``. Groq's checks: 400 for a missing ``model``/``voice``/``input``, an input over
``max_input_chars`` (200), a ``response_format`` other than ``wav``, a voice not in ``voices``
(when ``strict_voices``). Transcriptions answer ``{"text": ...}`` from the transcript script
(FIFO), else ``default_transcript``; 400 for a file that is not a RIFF/WAVE file.

Knobs (attributes of ``fake.audio``; changes apply to the next request): ``first_byte_ms``
(speech latency before the answer, default 0), ``ms_per_input_char`` (more latency per input
character, 0: synthesis time), ``ms_per_char`` (audio per character, 60), ``sample_rate`` (24000),
``max_input_chars`` (200), ``voices``, ``strict_voices`` (True), ``stt_latency_ms`` (0),
``default_transcript``. Failures: :meth:`FakeAudio.fail_speech` queues statuses (or
``"stall"``) answered to the next speech requests; ``fail_transcriptions`` the same for
transcriptions. ``fake.audio.requests`` records every audio request (:class:`AudioRecord`).

HTTP control (non-Python suites): ``POST /_fake/audio`` with a JSON object: ``transcripts``
(list, appended to the script), ``fail_speech`` / ``fail_transcriptions`` (lists of statuses
or ``"stall"``), any knob by name; ``GET /_fake/audio`` answers the records and knobs.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ...features.voice.wav import Pcm, write_wav
from .errors import error_response

if TYPE_CHECKING:
    from .server import FakeUpstream

GROQ_VOICES = ("autumn", "diana", "hannah", "austin", "daniel", "troy")
KNOBS = (
    "first_byte_ms",
    "ms_per_input_char",
    "ms_per_char",
    "sample_rate",
    "max_input_chars",
    "strict_voices",
    "stt_latency_ms",
    "default_transcript",
)


@dataclass
class AudioRecord:
    """One audio request: ``kind`` is ``speech`` or ``transcription``."""

    kind: str
    path: str
    model: str
    #: speech: the JSON body; transcription: the form fields (not the file)
    fields: dict[str, Any]
    #: the uploaded file's bytes (transcriptions)
    file: bytes = b""
    filename: str = ""
    monotonic: float = field(default_factory=time.monotonic)
    #: ``completed``, ``error`` or ``disconnected``
    outcome: str = "pending"


def speech_pcm(text: str, ms_per_char: float, sample_rate: int) -> bytes:
    """The fake's voice for ``text``: ``ms_per_char`` of a tone per letter or digit (its pitch
    from the character), silence for anything else."""
    per_char = int(sample_rate * ms_per_char / 1000)
    silence = bytes(2 * per_char)
    tones: dict[int, bytes] = {}
    out = bytearray()
    for char in text:
        if not char.isalnum():
            out += silence
            continue
        hz = 180 + (ord(char.lower()) % 32) * 12
        tone = tones.get(hz)
        if tone is None:
            step = 2 * math.pi * hz / sample_rate
            tone = tones[hz] = struct.pack(
                f"<{per_char}h", *(int(6000 * math.sin(step * i)) for i in range(per_char))
            )
        out += tone
    return bytes(out)


class FakeAudio:
    """The audio half of one :class:`~.server.FakeUpstream` (see the module docstring)."""

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.first_byte_ms = 0.0
        self.ms_per_input_char = 0.0
        self.ms_per_char = 60.0
        self.sample_rate = 24000
        self.max_input_chars = 200
        self.voices = list(GROQ_VOICES)
        self.strict_voices = True
        self.stt_latency_ms = 0.0
        self.default_transcript = "Hello there."
        self.requests: list[AudioRecord] = []
        self.transcripts: deque[str] = deque()
        self.speech_failures: deque[int | str] = deque()
        self.transcription_failures: deque[int | str] = deque()
        self._cache: dict[tuple[str, float, int], bytes] = {}

    def routes(self, app: web.Application) -> None:
        """Add the endpoints to ``app``."""
        for prefix in ("/v1", "/openai/v1"):
            app.router.add_post(f"{prefix}/audio/speech", self._speech)
            app.router.add_post(f"{prefix}/audio/transcriptions", self._transcription)
        app.router.add_post("/_fake/audio", self._control)
        app.router.add_get("/_fake/audio", self._state)

    def script_transcripts(self, *texts: str) -> None:
        """What the next transcriptions answer, in order."""
        self.transcripts.extend(texts)

    def fail_speech(self, *failures: int | str) -> None:
        """Answer the next speech requests with these statuses (``"stall"``: never answer)."""
        self.speech_failures.extend(failures)

    def fail_transcriptions(self, *failures: int | str) -> None:
        """Answer the next transcriptions with these statuses (``"stall"``: never answer)."""
        self.transcription_failures.extend(failures)

    def reset(self) -> None:
        """Clear the records, the scripts and the queued failures (not the knobs)."""
        self.requests.clear()
        self.transcripts.clear()
        self.speech_failures.clear()
        self.transcription_failures.clear()

    def wav_for(self, text: str) -> bytes:
        """The WAV file the fake answers for ``text`` (cached: the same text, the same bytes)."""
        key = (text, self.ms_per_char, self.sample_rate)
        found = self._cache.get(key)
        if found is None:
            pcm = speech_pcm(text, self.ms_per_char, self.sample_rate)
            found = write_wav(Pcm(pcm, self.sample_rate))
            if len(self._cache) < 512:
                self._cache[key] = found
        return found

    def _record(self, record: AudioRecord) -> AudioRecord:
        if self.fake.record_requests:
            self.requests.append(record)
        self.fake._notify()
        return record

    async def _failure(self, queue: deque[int | str], record: AudioRecord) -> web.Response | None:
        if not queue:
            return None
        failure = queue.popleft()
        if failure == "stall":
            await asyncio.sleep(self.fake.stall_directive_s)
        record.outcome = "error"
        status = int(failure) if failure != "stall" else 504
        retry_after = 1.0 if status == 429 else None
        return error_response(self.fake, status, retry_after=retry_after, model=record.model)

    async def _speech(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return error_response(self.fake, 400, "request body is not valid JSON")
        record = self._record(AudioRecord("speech", request.path, str(body.get("model")), body))
        try:
            return await self._answer_speech(body, record)
        except asyncio.CancelledError:
            record.outcome = "disconnected"
            self.fake.disconnects += 1
            raise
        finally:
            self.fake._notify()

    async def _answer_speech(self, body: dict[str, Any], record: AudioRecord) -> web.Response:
        text = body.get("input")
        problem = None
        if not body.get("model") or not isinstance(text, str) or not text:
            problem = "'model', 'voice' and 'input' are required"
        elif not isinstance(body.get("voice"), str):
            problem = "'voice' is required"
        elif len(text) > self.max_input_chars:
            problem = f"input must be at most {self.max_input_chars} characters"
        elif body.get("response_format", "wav") != "wav":
            problem = "response_format must be wav"
        elif self.strict_voices and body["voice"] not in self.voices:
            problem = "voice must be one of " + ", ".join(self.voices)
        if problem is not None:
            record.outcome = "error"
            return error_response(self.fake, 400, problem, model=record.model)
        failed = await self._failure(self.speech_failures, record)
        if failed is not None:
            return failed
        synthesis_ms = self.first_byte_ms + self.ms_per_input_char * len(str(text))
        await asyncio.sleep(synthesis_ms / 1000)
        record.outcome = "completed"
        return web.Response(body=self.wav_for(str(text)), content_type="audio/wav")

    async def _transcription(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        fields = {k: str(v) for k, v in form.items() if k != "file"}
        data = upload.file.read() if isinstance(upload, web.FileField) else b""
        name = upload.filename if isinstance(upload, web.FileField) else ""
        record = AudioRecord(
            "transcription", request.path, fields.get("model", ""), fields, data, name
        )
        self._record(record)
        try:
            if not fields.get("model") or not data:
                record.outcome = "error"
                return error_response(self.fake, 400, "'model' and 'file' are required")
            if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
                record.outcome = "error"
                return error_response(self.fake, 400, "could not decode the audio file")
            failed = await self._failure(self.transcription_failures, record)
            if failed is not None:
                return failed
            await asyncio.sleep(self.stt_latency_ms / 1000)
            text = self.transcripts.popleft() if self.transcripts else self.default_transcript
            record.outcome = "completed"
            return web.json_response({"text": text})
        except asyncio.CancelledError:
            record.outcome = "disconnected"
            self.fake.disconnects += 1
            raise
        finally:
            self.fake._notify()

    async def _control(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("a JSON object is required")
            self.script_transcripts(*(str(t) for t in data.get("transcripts", [])))
            self.fail_speech(*data.get("fail_speech", []))
            self.fail_transcriptions(*data.get("fail_transcriptions", []))
            for name in KNOBS:
                if name in data:
                    setattr(self, name, type(getattr(self, name))(data[name]))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        return await self._state(request)

    async def _state(self, request: web.Request) -> web.Response:
        records = [{**asdict(r), "file": len(r.file)} for r in self.requests]
        knobs = {name: getattr(self, name) for name in KNOBS}
        return web.json_response({"requests": records, "knobs": knobs})
