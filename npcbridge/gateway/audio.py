"""Speech requests through the gateway: one synthesis or one transcription of a turn, under the
same rules as its text (see :mod:`npcbridge.gateway.core`).

For each request: the **budgets** reserve the worst case over the model chain (characters at
the priciest text-to-speech price, or audio seconds at the priciest speech-to-text price) and
settle the real cost (when no budget limits the turn, nothing is held and :meth:`charge` adds
the turn's speech cost to the day's total once); the **model chain** is the named model, then
its catalog fallbacks, a model whose **circuit breaker** is open being skipped; each model's
**rate limits** are waited for within the turn's latency budget; retryable failures are
**retried** with full-jitter back-off, bounded by ``retry.max_attempts`` per model and
``retry.max_total_ms``. Failures end as :class:`~npcbridge.providers.base.UpstreamError` or
:class:`~npcbridge.protocol.errors.ProtocolError`, like the text's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..providers.audio import AudioProvider, SpeechRequest, TranscriptionRequest
from ..providers.base import Reason, UpstreamError
from .catalog import AudioModelEntry
from .errors import BreakerOpen, failure_label, final_error
from .ratelimit import RateLimitWait
from .retry import Verdict, backoff_s, classify, counts_against_health, retry_after_s

if TYPE_CHECKING:
    from ..pipeline.turn import Turn
    from .core import Gateway

T = TypeVar("T")


@dataclass(frozen=True)
class Spoken:
    """A synthesis: the WAV file, the model that made it and what it cost."""

    wav: bytes
    model: str
    cost_usd: float


@dataclass(frozen=True)
class Heard:
    """A transcription: the text, the model that made it and what it cost."""

    text: str
    model: str
    cost_usd: float


class AudioGateway:
    """The speech requests of one server, on its gateway's limits, breakers and budgets."""

    def __init__(self, gateway: Gateway, providers: Mapping[str, AudioProvider]) -> None:
        """``providers``: the speech providers by name (filled at start-up)."""
        self.gateway = gateway
        self.providers = providers
        self.rng = random.Random()

    def models(self, kind: str) -> list[AudioModelEntry]:
        """The catalog's models of ``kind`` whose provider is registered."""
        catalog = self.gateway.catalog.audio_models(kind)
        return [entry for entry in catalog if entry.provider in self.providers]

    def entry(self, name: str, kind: str) -> AudioModelEntry | None:
        """The usable model ``name`` of ``kind``, or None."""
        found = self.gateway.catalog.audio.get(name)
        if found is None or found.kind != kind or found.provider not in self.providers:
            return None
        return found

    async def speak(
        self, turn: Turn, model: AudioModelEntry, voice: str, text: str, speed: float | None
    ) -> Spoken:
        """Synthesise ``text`` for ``turn`` (see the module docstring)."""

        def call(entry: AudioModelEntry, provider: AudioProvider) -> Awaitable[bytes]:
            return provider.speech(SpeechRequest(entry.id, voice, text, speed))

        wav, entry = await self._run(turn, model, call, len(text), 0.0, len(text) // 4)
        return Spoken(wav, entry.id, entry.cost_usd(chars=len(text)))

    async def transcribe(
        self,
        turn: Turn,
        model: AudioModelEntry,
        wav: bytes,
        seconds: float,
        language: str | None = None,
    ) -> Heard:
        """Transcribe ``seconds`` of speech (a WAV file) for ``turn`` (``language``: ISO-639-1,
        None to let the model detect it)."""

        def call(entry: AudioModelEntry, provider: AudioProvider) -> Awaitable[str]:
            return provider.transcribe(TranscriptionRequest(entry.id, wav, language))

        text, entry = await self._run(turn, model, call, 0, seconds, 0)
        return Heard(text, entry.id, entry.cost_usd(seconds=seconds))

    async def take_audio_seconds(self, turn: Turn, seconds: float) -> None:
        """Count ``seconds`` of the player's speech against ``budget.per_player_audio_s_per_day``
        (``budget_exceeded`` when they do not fit)."""
        await self.gateway.budgets.take_audio_seconds(turn.player, seconds, turn.request_id)

    def chain(self, model: AudioModelEntry) -> list[AudioModelEntry]:
        """``model``, then its usable fallbacks of the same kind, without repeats."""
        chain = [model]
        for name in model.fallbacks:
            entry = self.entry(name, model.kind)
            if entry is not None and entry not in chain:
                chain.append(entry)
        return chain

    async def _run(
        self,
        turn: Turn,
        model: AudioModelEntry,
        call: Callable[[AudioModelEntry, AudioProvider], Awaitable[T]],
        chars: int,
        seconds: float,
        tokens: int,
    ) -> tuple[T, AudioModelEntry]:
        gateway = self.gateway
        chain = self.chain(model)
        if not gateway.policy.budgeted(turn):
            # nothing to hold: the cost is added to the day's total by charge(), once a turn
            answer, entry = await self._serve(turn, chain, call, tokens)
            self._count_cost(entry, entry.cost_usd(chars, seconds))
            return answer, entry
        scopes = gateway.budget_scopes(turn)
        worst = max(entry.cost_usd(chars, seconds) for entry in chain)
        reservation = await gateway.budgets.reserve(scopes, worst, turn.request_id)
        try:
            answer, entry = await self._serve(turn, chain, call, tokens)
            reservation.cost_usd = entry.cost_usd(chars, seconds)
            self._count_cost(entry, reservation.cost_usd)
            return answer, entry
        finally:
            await gateway.budgets.settle(reservation)

    def _count_cost(self, entry: AudioModelEntry, cost_usd: float) -> None:
        """Add a request's cost to ``npcbridge_cost_usd_total`` under its speech model."""
        if cost_usd > 0:
            metrics = self.gateway.metrics
            metrics.cost.labels(metrics.model(entry.id)).inc(cost_usd)

    async def charge(self, turn: Turn, cost_usd: float) -> None:
        """Count what a turn's speech cost when no budget limited it (no request of it was
        reserved): one counter add for the whole turn, not one per synthesis."""
        if cost_usd > 0 and not self.gateway.policy.budgeted(turn):
            await self.gateway.budgets.charge(self.gateway.budget_scopes(turn), cost_usd)

    async def _serve(
        self,
        turn: Turn,
        chain: list[AudioModelEntry],
        call: Callable[[AudioModelEntry, AudioProvider], Awaitable[T]],
        tokens: int,
    ) -> tuple[T, AudioModelEntry]:
        gateway = self.gateway
        retry = gateway.config.retry
        total_deadline = time.perf_counter() + retry.max_total_ms / 1000
        wait_deadline = turn.started_at + gateway.policy.latency_budget_s(turn)
        client = turn.player or f"npc:{turn.npc}"
        last: BaseException | None = None
        for entry in chain:
            breaker = gateway.breakers.get(entry.id)
            limiter = gateway.limiter.for_model(entry.provider, entry.id, entry.limits)
            provider = self.providers[entry.provider]
            attempt = 0
            while True:
                if gateway.config.breaker.enabled and not breaker.acquire():
                    last = BreakerOpen(entry.id, breaker.retry_after_s(), breaker.last_failure)
                    break
                if gateway.config.ratelimit.enabled:
                    deadline = time.monotonic() + max(0.0, wait_deadline - time.perf_counter())
                    try:
                        await limiter.acquire(client, tokens, deadline)
                    except RateLimitWait as exc:
                        breaker.release()
                        last = exc
                        break
                sent = time.perf_counter()
                try:
                    answer = await self._counted(entry, call(entry, provider), sent)
                except UpstreamError as exc:
                    last = exc
                    if counts_against_health(exc):
                        breaker.failure(exc)
                    else:
                        breaker.release()
                    verdict = classify(exc)
                    if verdict is Verdict.FAIL:
                        raise
                    attempt += 1
                    if verdict is Verdict.FALLBACK or attempt >= retry.max_attempts:
                        break
                    wait = max(backoff_s(retry, attempt - 1, self.rng), retry_after_s(exc) or 0)
                    if time.perf_counter() + wait > total_deadline:
                        break
                    await asyncio.sleep(wait)
                    continue
                except asyncio.CancelledError:
                    breaker.release()
                    raise
                breaker.success()
                return answer, entry
        raise final_error(last or UpstreamError(reason=Reason.UNAVAILABLE), turn.request_id)

    async def _counted(self, entry: AudioModelEntry, answer: Awaitable[T], sent: float) -> T:
        """``answer``, counted as the text's upstream requests are: its outcome and latency
        under the speech model's label."""
        outcome = "cancelled"
        try:
            value = await answer
            outcome = "ok"
            return value
        except UpstreamError as exc:
            outcome = failure_label(exc)
            raise
        finally:
            self.gateway.metrics.upstream_request(entry.id, outcome, time.perf_counter() - sent)
