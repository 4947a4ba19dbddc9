"""The gateway between the pipeline and the providers: the orchestrator of one turn's upstream
work. Upstream failures become protocol errors in one place, :mod:`npcbridge.gateway.errors`.

For each turn, in order:

1. **cache** (:mod:`npcbridge.gateway.cache`): a repeatable request whose reply is cached is
   streamed from the cache; nothing goes upstream and the turn costs nothing;
2. **budget admission** (:mod:`npcbridge.gateway.budget`): the worst-case cost (the priciest
   model of the chain, see :mod:`npcbridge.gateway.policy`) is reserved in every budget, else
   ``budget_exceeded``;
3. **the model chain**: the selected model, then its fallbacks (the persona's ``fallbacks`` or
   the catalog entry's); a model whose circuit breaker (:mod:`npcbridge.gateway.breaker`) is open is
   skipped;
4. per model, **rate limiting** (:mod:`npcbridge.gateway.ratelimit`): wait in the fair queue for
   capacity, unless the wait would pass the turn's latency budget (then the next model, or
   ``rate_limited`` with ``retry_after_ms``);
5. per attempt, the **stream** (:mod:`npcbridge.gateway.attempt`), whose first event must come
   within the first-token timeout; retryable failures (:mod:`npcbridge.gateway.retry`) before the
   first delta are retried with full-jitter back-off (at least the ``retry-after``), bounded by
   ``retry.max_attempts`` per model and ``retry.max_total_ms`` per turn, then the next model is
   tried. Once a delta went out, a failure is final: the pipeline ends the turn with finish
   "error" and the partial text;
6. **accounting**: headers correct the rate limits, real usage settles the token buckets and is
   charged to the budgets, complete replies fill the cache, and metrics are recorded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..pipeline.turn import UpstreamStep, Usage
from ..protocol.errors import ErrorCode, ProtocolError
from ..providers.base import (
    ProviderRequest,
    Reason,
    StreamDone,
    StreamEvent,
    TextDelta,
    UpstreamError,
)
from .attempt import Attempts, CommittedFailure
from .audio import AudioGateway
from .breaker import Breakers, BreakerState, CircuitBreaker
from .budget import (
    Budgets,
    Counters,
    MemoryCounters,
    Reservation,
    Scope,
    UncataloguedPrices,
    counters_of,
)
from .cache import ResponseCache, cache_key
from .catalog import ModelEntry
from .errors import BreakerOpen, failure_label, final_error
from .metrics import Metrics
from .policy import TurnPolicy
from .ratelimit import ModelLimiter, RateLimiter, RateLimitWait, SharedWindows
from .retry import Verdict, backoff_s, classify, retry_after_s

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..config import Config
    from ..pipeline.turn import Turn
    from ..providers.audio import AudioProvider
    from ..providers.base import Provider
    from ..stores.base import Store
    from ..stores.writes import WriteQueue
    from .catalog import Catalog

log = logging.getLogger("npcbridge.gateway.core")


class Gateway:
    """Streams a turn from the provider that serves its model, carefully (see module doc)."""

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        metrics: Metrics,
        providers: Mapping[str, Provider],
        store: Callable[[], Store | None],
        writes: Callable[[], WriteQueue | None] = lambda: None,
        audio_providers: Mapping[str, AudioProvider] | None = None,
    ) -> None:
        """``providers``, ``audio_providers`` (speech), ``store`` and ``writes`` (the store's
        write queue, through which budget settlements go) are filled at start-up (``store()``
        is None before)."""
        self.config = config
        self.catalog = catalog
        self.providers = providers
        self.store = store
        self.limiter = RateLimiter(config.ratelimit)
        self.breakers = Breakers(config.breaker)
        self.cache = ResponseCache(config.cache)
        self.metrics = metrics
        self.metrics.track_queue(self.limiter.queue_length)
        self.metrics.track_headroom(self.limiter.headroom)
        self.memory_counters = MemoryCounters()
        self.budgets = Budgets(config.budget, self.counters, writes)
        self.uncatalogued = UncataloguedPrices(catalog, config.gateway)
        self.policy = TurnPolicy(config, catalog, self.budgets, self.uncatalogued)
        self.attempts = Attempts(config, metrics, self.cache, self.policy)
        self.rng = random.Random()
        self._exported: set[str] = set()
        #: speech requests (synthesis, transcription) on the same limits, breakers and budgets
        self.audio = AudioGateway(self, audio_providers if audio_providers is not None else {})

    # ------------------------------------------------------------------ policy helpers

    def counters(self) -> Counters:
        """The store's atomic counters when it has them, else this process's own."""
        return counters_of(self.store()) or self.memory_counters

    def provider_for(self, model: ModelEntry) -> Provider:
        """The provider that serves ``model``."""
        provider = self.providers.get(model.provider)
        if provider is None:
            raise ProtocolError(
                ErrorCode.INTERNAL, f"no provider {model.provider!r} for model {model.id!r}"
            )
        return provider

    def shared_store(self) -> Any:
        """The store when several processes share it (for shared rate-limit windows)."""
        store = self.store()
        if store is not None and getattr(store, "shared", False) and counters_of(store):
            return store
        return None

    def budget_scopes(self, turn: Turn) -> list[Scope]:
        """The budgets this turn counts against (see :meth:`TurnPolicy.budget_scopes`)."""
        return self.policy.budget_scopes(turn)

    def price(self, turn: Turn, model: ModelEntry) -> ModelEntry:
        """The entry whose prices ``turn`` pays for ``model`` (see :meth:`TurnPolicy.price`)."""
        return self.policy.price(turn, model)

    def turn_deadline(self, turn: Turn) -> float:
        """When the turn must be over (see :meth:`TurnPolicy.turn_deadline`)."""
        return self.policy.turn_deadline(turn)

    # ------------------------------------------------------------------ the turn

    async def stream(
        self, turn: Turn, model: ModelEntry, request: ProviderRequest
    ) -> AsyncIterator[StreamEvent]:
        """Yield the events of the turn's reply; raise :class:`UpstreamError` or
        :class:`ProtocolError` when it cannot be served."""
        policy = self.policy
        scopes = policy.budget_scopes(turn)
        # rate limits keep the expected reply size; budgets reserve the cap that goes upstream
        prompt_tokens, output_tokens = policy.estimate_tokens(request)
        rate_tokens = prompt_tokens + output_tokens
        request = policy.capped(request, turn)
        key = cache_key(request) if policy.cacheable(turn, request) else None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.metrics.cache_hits.inc()
                turn.cached = True
                turn.served_model = hit.model or model.id
                turn.upstream_steps.append(UpstreamStep(turn.served_model, "cached"))
                turn.queue_ms = _ms(time.perf_counter() - turn.started_at)
                for text in hit.deltas:
                    yield TextDelta(text)
                yield StreamDone(finish=hit.finish, usage=Usage(0, 0))
                return
            self.metrics.cache_misses.inc()

        output_cap = request.max_tokens or output_tokens  # capped whenever a budget applies
        worst = policy.worst_case_usd(turn, model, prompt_tokens, output_cap)
        try:
            reservation = await self.budgets.reserve(scopes, worst, turn.request_id)
        except ProtocolError:
            self.metrics.budget_refusals.inc()
            raise
        try:
            async for event in self._serve(turn, model, request, reservation, key, rate_tokens):
                yield event
        finally:
            # while the store cannot be reached the settlement waits in its write queue; what
            # still raises here is another failure (the turn itself is over either way)
            try:
                await self.budgets.settle(reservation)
            except Exception as exc:
                log.warning("could not record the cost of turn %s: %s", turn.request_id, exc)

    async def _serve(
        self,
        turn: Turn,
        model: ModelEntry,
        request: ProviderRequest,
        reservation: Reservation,
        key: str | None,
        tokens: int,
    ) -> AsyncIterator[StreamEvent]:
        retry = self.config.retry
        now = time.perf_counter()
        turn_deadline = self.policy.turn_deadline(turn)
        wait_deadline = min(turn.started_at + self.policy.latency_budget_s(turn), turn_deadline)
        total_deadline = now + retry.max_total_ms / 1000
        client = turn.player or f"npc:{turn.npc}"
        last: BaseException | None = None
        chain = self.policy.chain(turn, model)
        for index, candidate in enumerate(chain):
            if index > 0:
                self.metrics.fallbacks.labels(
                    self.metrics.model(chain[index - 1].id), self.metrics.model(candidate.id)
                ).inc()
                log.info("turn %s falls back to %s", turn.request_id, candidate.id)
            breaker = self._breaker(candidate.id)
            limiter = self.limiter.for_model(candidate.provider, candidate.id, candidate.limits)
            attempt = 0
            while True:
                if time.perf_counter() >= turn_deadline:
                    raise UpstreamError(timeout=True, reason=Reason.DEADLINE)
                if self.config.breaker.enabled and not breaker.acquire():
                    # the cause: this turn's own failure, else the one that opened the breaker
                    cause = last if isinstance(last, UpstreamError) else breaker.last_failure
                    last = BreakerOpen(candidate.id, breaker.retry_after_s(), cause)
                    turn.upstream_steps.append(
                        UpstreamStep(candidate.id, "fallback", "breaker_open")
                    )
                    break
                try:
                    await self._admit_rate(turn, candidate, limiter, client, tokens, wait_deadline)
                except RateLimitWait as exc:
                    breaker.release()
                    last = exc
                    turn.upstream_steps.append(
                        UpstreamStep(candidate.id, "fallback", "rate_limited")
                    )
                    break
                turn.queue_ms = _ms(time.perf_counter() - turn.started_at)
                served = replace(request, model=candidate.id)
                try:
                    provider = self.provider_for(candidate)
                    async for event in self.attempts.run(
                        turn,
                        candidate,
                        provider,
                        served,
                        breaker,
                        limiter,
                        tokens,
                        reservation,
                        key,
                    ):
                        yield event
                    turn.upstream_steps.append(UpstreamStep(candidate.id, "ok"))
                    return
                except CommittedFailure as exc:
                    turn.upstream_steps.append(
                        UpstreamStep(candidate.id, "failed", _label(exc.error))
                    )
                    raise exc.error from None
                except UpstreamError as exc:
                    last = exc
                    step = UpstreamStep(candidate.id, "fallback", failure_label(exc))
                    turn.upstream_steps.append(step)
                    verdict = classify(exc)
                    if verdict is Verdict.FAIL:
                        turn.upstream_steps[-1] = replace(step, outcome="failed")
                        raise
                    if verdict is Verdict.FALLBACK:
                        break
                    attempt += 1
                    delay = self._retry_delay(exc, attempt, limiter)
                    if delay is None or attempt >= retry.max_attempts:
                        break
                    sleep, expected = delay
                    now = time.perf_counter()
                    if expected > 0 and now + expected > min(
                        total_deadline, turn_deadline, max(wait_deadline, now)
                    ):
                        break
                    turn.upstream_steps[-1] = replace(step, outcome="retry")
                    self.metrics.retries.labels(
                        self.metrics.model(candidate.id), failure_label(exc)
                    ).inc()
                    log.info(
                        "turn %s: %s on %s, retry %d after %.3fs",
                        turn.request_id,
                        exc,
                        candidate.id,
                        attempt,
                        expected,
                    )
                    await asyncio.sleep(sleep)
            if time.perf_counter() > total_deadline:
                break
        steps = turn.upstream_steps
        if steps:  # the chain ran out: the last step was the turn's final failure
            steps[-1] = replace(steps[-1], outcome="failed")
        raise final_error(last, turn.request_id)

    def _breaker(self, model_id: str) -> CircuitBreaker:
        """The model's breaker; its state is exported as ``npcbridge_breaker_open``."""
        breaker = self.breakers.get(model_id)
        if model_id not in self._exported and self.metrics.model(model_id) == model_id:
            self._exported.add(model_id)
            self.metrics.breaker_open.labels(model_id).set_function(
                lambda: 1.0 if breaker.state is BreakerState.OPEN else 0.0
            )
        return breaker

    def _retry_delay(
        self, exc: UpstreamError, attempt: int, limiter: ModelLimiter
    ) -> tuple[float, float] | None:
        """(seconds to sleep, seconds until the next attempt can go) before retrying on the same
        model, or None to move on to the next model.

        A 429's ``retry-after`` blocks the model's limiter (every turn waits, not only this
        one) and the rate-limit queue enforces it; other waits are slept here. Either way the
        wait is at least the full-jitter back-off and at least the ``retry-after``.
        """
        retry = self.config.retry
        after = retry_after_s(exc)
        blocked = exc.status == 429 and after is not None and self.config.ratelimit.enabled
        if blocked and after is not None:
            limiter.block(after)  # even when this turn moves on: spare the model for everyone
        if after is not None and after * 1000 > retry.max_retry_after_ms:
            return None
        jitter = backoff_s(retry, attempt - 1, self.rng)
        expected = max(jitter, after or 0.0)
        return (jitter if blocked else expected), expected

    async def _admit_rate(
        self,
        turn: Turn,
        model: ModelEntry,
        limiter: ModelLimiter,
        client: str,
        tokens: int,
        wait_deadline: float,
    ) -> None:
        """Wait for rate-limit capacity (local buckets, then the shared windows)."""
        if not self.config.ratelimit.enabled:
            return
        deadline = time.monotonic() + (wait_deadline - time.perf_counter())
        try:
            waited = await limiter.acquire(client, tokens, deadline)
            store = self.shared_store()
            if store is not None:
                limits = self.config.ratelimit.limits_for(model.id, model.limits)
                try:
                    waited += await SharedWindows(store, limits, limiter.name).reserve(
                        tokens, deadline
                    )
                except BaseException:
                    limiter.give_back(limiter.amounts(tokens))
                    raise
        except RateLimitWait:
            self.metrics.ratelimited.labels(self.metrics.model(model.id)).inc()
            raise
        self.metrics.ratelimit_wait.labels(self.metrics.model(model.id)).observe(waited)


def _label(exc: BaseException) -> str:
    """The failure label of an exception ending a turn mid-stream."""
    if isinstance(exc, UpstreamError):
        return failure_label(exc)
    return str(getattr(exc, "code", "") or type(exc).__name__)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
