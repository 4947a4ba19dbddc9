"""One voiced reply: its units synthesised concurrently as the text streams, their frames sent
strictly in order, the end waiting (bounded) for what is pending, a cancel stopping it all at
once, and the ``reply.end.voice`` report."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...gateway.errors import upstream_protocol_error
from ...protocol.errors import ErrorCode, ProtocolError
from ...providers.base import UpstreamError
from .frames import audio_frames
from .segment import Segmenter
from .wav import AudioError, Pcm, read_wav

if TYPE_CHECKING:
    from ...gateway.audio import AudioGateway
    from ...gateway.catalog import AudioModelEntry
    from ...pipeline.turn import Turn
    from .settings import VoiceSettings

log = logging.getLogger("npcbridge.plugin.voice")


@dataclass(frozen=True)
class VoicePlan:
    """How one reply is spoken: the model, the voice and the speed."""

    model: AudioModelEntry
    voice: str
    speed: float | None = None


@dataclass
class _Unit:
    text: str
    task: asyncio.Task[tuple[Pcm, float]]


@dataclass
class Report:
    """What ``reply.end.voice`` says."""

    first_audio_at: float | None = None
    audio_ms: int = 0
    chars: int = 0
    cost_usd: float = 0.0
    error: str | None = None
    heard: list[str] = field(default_factory=list)


class ReplyVoice:
    """The speech of one turn (kept in ``turn.state``)."""

    def __init__(
        self, turn: Turn, plan: VoicePlan, settings: VoiceSettings, audio: AudioGateway
    ) -> None:
        self.turn = turn
        self.plan = plan
        self.settings = settings
        self.audio = audio
        limit = min(settings.max_unit_chars, plan.model.max_input_chars or 10**6)
        self.segmenter = Segmenter(settings.first_unit_words, limit)
        self.units: list[_Unit] = []
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.report = Report()
        self.seq = 0
        self.closed = False
        self.stopped = False
        self._more = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- the text

    def feed(self, text: str) -> None:
        """Text the player got: start synthesising each unit it completes."""
        if not self.stopped:
            for unit in self.segmenter.feed(text):
                self._start(unit)

    def _start(self, text: str) -> None:
        task = asyncio.create_task(self._synthesise(text))
        self.units.append(_Unit(text, task))
        self._more.set()
        if self._pump is None:
            self._pump = asyncio.create_task(self._send_in_order())

    async def _synthesise(self, text: str) -> tuple[Pcm, float]:
        async with self.slots:
            plan = self.plan
            spoken = await self.audio.speak(self.turn, plan.model, plan.voice, text, plan.speed)
        return read_wav(spoken.wav), spoken.cost_usd

    # ---------------------------------------------------------------- the frames

    async def _send_in_order(self) -> None:
        index = 0
        while True:
            if index == len(self.units):
                if self.closed:
                    return
                self._more.clear()
                await self._more.wait()
                continue
            unit = self.units[index]
            index += 1
            try:
                pcm, cost = await unit.task
            except asyncio.CancelledError:
                if self.stopped:
                    raise
                self._fail("internal")
                return
            except Exception as exc:
                self._fail(_code(exc))
                return
            self._send(unit.text, pcm, cost)

    def _send(self, text: str, pcm: Pcm, cost: float) -> None:
        report, turn = self.report, self.turn
        frames = audio_frames(
            turn.request_id, turn.npc, self.seq, text, pcm, self.settings.max_frame_bytes
        )
        if report.first_audio_at is None:
            report.first_audio_at = time.perf_counter()
        for frame in frames:
            turn.emit(frame)
        self.seq += len(frames)
        report.audio_ms += sum(int(frame["duration_ms"]) for frame in frames)
        report.chars += len(text)
        report.cost_usd += cost
        report.heard.append(text)

    def _fail(self, code: str) -> None:
        """Speech failed: no more audio for this reply; the text goes on."""
        log.info("turn %s: speech stopped (%s)", self.turn.request_id, code)
        self.report.error = code
        self.stop()

    # ---------------------------------------------------------------- the end

    async def finish(self) -> None:
        """The text is complete: synthesise the rest, send it, return when all was sent (or
        after ``end_wait_s``: the rest is dropped, ``error`` ``upstream_timeout``)."""
        if not self.stopped:
            for unit in self.segmenter.flush():
                self._start(unit)
        self.closed = True
        self._more.set()
        if self._pump is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._pump), self.settings.end_wait_s)
        except TimeoutError:
            self._fail(str(ErrorCode.UPSTREAM_TIMEOUT))
        except asyncio.CancelledError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every synthesis and send nothing more, at once."""
        self.stopped = self.closed = True
        for unit in self.units:
            unit.task.cancel()
        if self._pump is not None and self._pump is not asyncio.current_task():
            self._pump.cancel()

    @property
    def heard(self) -> str:
        """The text of the units whose audio was sent."""
        return " ".join(self.report.heard)

    def fields(self) -> dict[str, Any]:
        """``reply.end.voice``."""
        report = self.report
        started = self.turn.started_at
        ttfa = (report.first_audio_at - started) * 1000 if report.first_audio_at else 0.0
        voice: dict[str, Any] = {
            "ttfa_ms": round(ttfa, 1),
            "audio_ms": report.audio_ms,
            "chars": report.chars,
            "cost_usd": float(report.cost_usd),
        }
        if report.error is not None:
            voice["error"] = report.error
        return voice


def _code(exc: Exception) -> str:
    """The error code a failed synthesis reports (never its text)."""
    if isinstance(exc, ProtocolError):
        return str(exc.code)
    if isinstance(exc, UpstreamError):
        return str(upstream_protocol_error(exc, None).code)
    if isinstance(exc, AudioError):
        return str(ErrorCode.UPSTREAM_ERROR)
    log.error("speech failed", exc_info=exc)
    return str(ErrorCode.INTERNAL)
