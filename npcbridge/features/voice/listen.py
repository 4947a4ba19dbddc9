"""The player's speech in: ``speech`` (a whole utterance) or ``speech.start`` /
``speech.chunk`` / ``speech.end`` (push-to-talk), checked, transcribed through the gateway,
answered with ``transcript`` and then the turn, exactly as for a ``say`` with that text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...gateway.errors import upstream_protocol_error
from ...pipeline.turn import Turn
from ...protocol.errors import DecodeError, ErrorCode, ProtocolError
from ...protocol.frames import STREAM_FRAMES
from ...protocol.messages import Say, Speech, SpeechChunk, SpeechEnd, SpeechStart
from ...providers.base import UpstreamError
from ..connection import Connection
from .wav import AudioError, Pcm, raw_pcm, read_wav, write_wav

if TYPE_CHECKING:
    from ...gateway.catalog import AudioModelEntry
    from ...plugin.api import PluginAPI
    from .settings import VoiceSettings

#: the fields of a speech message that are not ``say`` fields
_SPEECH_ONLY = {"type", "audio", "format", "sample_rate", "channels"}


@dataclass
class Utterance:
    """A chunked utterance while the player speaks."""

    start: SpeechStart
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    next_seq: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    #: what ends the request instead of a transcript (out of order, too big)
    failure: ProtocolError | None = None


class Utterances(dict[str | int, Utterance]):
    """The utterances in progress on one connection, by request id."""


class Listener:
    """Serves the speech messages of one server."""

    def __init__(self, api: PluginAPI, settings: VoiceSettings, model: AudioModelEntry) -> None:
        self.api = api
        self.settings = settings
        self.model = model

    # ---------------------------------------------------------------- the messages

    async def on_speech(self, session: Connection, msg: Any) -> None:
        """``speech``: a whole utterance."""
        assert isinstance(msg, Speech)
        pcm = self.decode(msg, msg.audio)
        await self.answer(session, msg, pcm)

    async def on_start(self, session: Connection, msg: Any) -> None:
        """``speech.start``: wait for the chunks and ``speech.end``, then answer."""
        assert isinstance(msg, SpeechStart)
        self._persona(session, msg)  # an unknown NPC is refused before the player speaks
        utterances = session.plugin_state(Utterances)
        utterance = utterances[msg.id] = Utterance(msg)
        try:
            await asyncio.wait_for(utterance.ended.wait(), self.settings.speech_timeout_s)
        except TimeoutError:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "speech.start: no speech.end in time", request_id=msg.id
            ) from None
        except asyncio.CancelledError:
            _uncancel()
            session.send(_cancelled(msg, self.api.default_model))
            return
        finally:
            utterances.pop(msg.id, None)
        if utterance.failure is not None:
            raise utterance.failure
        pcm = self.decode(msg, b"".join(utterance.chunks), refuse=False)
        await self.answer(session, msg, pcm)

    async def on_chunk(self, session: Connection, msg: Any) -> None:
        """``speech.chunk``: the next bytes of an utterance."""
        assert isinstance(msg, SpeechChunk)
        utterance = self._utterance(session, msg.id, "speech.chunk")
        if utterance.failure is not None:
            return
        if msg.seq != utterance.next_seq:
            utterance.failure = ProtocolError(
                ErrorCode.BAD_REQUEST,
                "speech.chunk: field 'seq': chunks out of order",
                request_id=msg.id,
            )
        elif utterance.size + len(msg.audio) > self.settings.max_speech_bytes:
            utterance.failure = ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"speech: field 'audio': bigger than {self.settings.max_speech_bytes} bytes",
                request_id=msg.id,
            )
        else:
            utterance.chunks.append(msg.audio)
            utterance.size += len(msg.audio)
            utterance.next_seq += 1
            return
        utterance.ended.set()  # the request ends with its failure now

    async def on_end(self, session: Connection, msg: Any) -> None:
        """``speech.end``: the player stopped speaking."""
        assert isinstance(msg, SpeechEnd)
        self._utterance(session, msg.id, "speech.end").ended.set()

    def _utterance(self, session: Connection, request_id: str | int, kind: str) -> Utterance:
        found = session.plugin_state(Utterances).get(request_id)
        if found is None:
            raise DecodeError(
                f"{kind}: field 'id': no utterance in progress with this id",
                request_id=request_id,
            )
        return found

    # ---------------------------------------------------------------- checking

    def decode(self, msg: SpeechStart, data: bytes, refuse: bool = True) -> Pcm:
        """The utterance as PCM; ``bad_request`` naming the problem (a refusal of ``msg``
        when ``refuse``)."""
        limit = self.settings
        problem = None
        pcm = None
        if not data:
            problem = "empty audio"
        elif len(data) > limit.max_speech_bytes:
            problem = f"bigger than {limit.max_speech_bytes} bytes"
        else:
            try:
                pcm = (
                    read_wav(data)
                    if msg.format == "wav"
                    else raw_pcm(data, msg.sample_rate, msg.channels)
                )
            except AudioError as exc:
                problem = str(exc)
        if pcm is not None and not pcm.frames:
            problem = "empty audio"
        elif pcm is not None and pcm.duration_s > limit.max_speech_s:
            problem = f"longer than {limit.max_speech_s:g} seconds"
        if problem is not None or pcm is None:
            raise DecodeError(
                f"{msg.type}: field 'audio': {problem}",
                request_id=msg.id,
                refused=msg.type if refuse else None,
            )
        return pcm

    def _persona(self, session: Connection, msg: SpeechStart) -> Any:
        try:
            return self.api.persona(msg.npc, session.npcs)
        except ProtocolError as exc:
            exc.request_id, exc.refused = msg.id, msg.type
            raise

    # ---------------------------------------------------------------- the answer

    async def answer(self, session: Connection, msg: SpeechStart, pcm: Pcm) -> None:
        """Transcribe, send ``transcript``, run the turn."""
        persona = self._persona(session, msg)
        fields = msg.model_dump(exclude=_SPEECH_ONLY, exclude_none=True)
        say = Say.model_validate({**fields, "type": "say", "text": ""})
        emit = session.send if msg.stream else _final(session.send)
        turn = Turn.from_say(say, persona, session.id, emit)
        audio = self.api.turns.audio
        try:
            await audio.take_audio_seconds(turn, pcm.duration_s)
            wav, seconds = write_wav(pcm), pcm.duration_s
            heard = await audio.transcribe(turn, self.model, wav, seconds, self.settings.language)
        except ProtocolError as exc:
            exc.request_id = msg.id
            raise
        except UpstreamError as exc:
            raise upstream_protocol_error(exc, msg.id) from None
        except asyncio.CancelledError:
            _uncancel()
            session.send(_cancelled(msg, self.api.default_model))
            return
        await audio.charge(turn, heard.cost_usd)
        text = heard.text.strip()
        if not text:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"{msg.type}: no speech recognised", request_id=msg.id
            )
        session.check_text(msg.type, text, msg.id)
        session.send({"type": "transcript", "id": msg.id, "npc": msg.npc, "text": text})
        turn.text = turn.player_text = text
        turn.started_at = time.perf_counter()
        result = await self.api.turns.run(turn)
        if result is not None:
            await self.api.turns.finish(turn, result)


def _final(send: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``emit`` of a ``stream: false`` request: only what follows the stream."""

    def emit(frame: dict[str, Any]) -> None:
        if frame.get("type") not in STREAM_FRAMES:
            send(frame)

    return emit


def _cancelled(msg: SpeechStart, model: str) -> dict[str, Any]:
    """The ``reply.end`` of a speech request cancelled before its transcript."""
    return {
        "type": "reply.end",
        "id": msg.id,
        "npc": msg.npc,
        "text": "",
        "finish": "cancelled",
        "model": model,
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "cost_usd": 0.0,
        "timing": {"queue_ms": 0.0, "ttft_ms": 0.0, "total_ms": 0.0},
    }


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
