"""The gateway between the pipeline and the providers: the orchestrator of one turn's upstream
work. It is the one place where upstream failures are classified into protocol errors.

For each turn, in order:

1. **cache** (:mod:`npcbridge.gateway.cache`): a repeatable request whose reply is cached is
   streamed from the cache; nothing goes upstream and the turn costs nothing;
2. **budget admission** (:mod:`npcbridge.gateway.budget`): the estimated cost must fit every budget,
   else ``budget_exceeded``;
3. **the model chain**: the selected model, then its fallbacks (the persona's ``fallbacks`` or
   the catalog entry's); a model whose circuit breaker (:mod:`npcbridge.gateway.breaker`) is open is
   skipped;
4. per model, **rate limiting** (:mod:`npcbridge.gateway.ratelimit`): wait in the fair queue for
   capacity, unless the wait would pass the turn's latency budget (then the next model, or
   ``rate_limited`` with ``retry_after_ms``);
5. per attempt, the **stream**, whose first event must come within the first-token timeout;
   retryable failures (:mod:`npcbridge.gateway.retry`) before the first delta are retried with
   full-jitter back-off (at least the ``retry-after``), bounded by ``retry.max_attempts`` per
   model and ``retry.max_total_ms`` per turn, then the next model is tried. Once a delta went
   out, a failure is final: the pipeline ends the turn with finish "error" and the partial text;
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

from ..pipeline.turn import Usage
from ..protocol.errors import ErrorCode, ProtocolError
from ..providers.base import (
    ProviderRequest,
    Reason,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
)
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
from .cache import CachedReply, ResponseCache, cache_key
from .catalog import ModelEntry
from .deadline import StreamDeadline
from .metrics import Metrics
from .ratelimit import ModelLimiter, RateLimiter, RateLimitWait, SharedWindows
from .retry import Verdict, backoff_s, classify, counts_against_health, retry_after_s

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..config import Config
    from ..pipeline.turn import Turn
    from ..providers.base import Provider
    from ..stores.base import Store
    from .catalog import Catalog

log = logging.getLogger("npcbridge.gateway.core")


def upstream_protocol_error(exc: UpstreamError, request_id: str | int | None) -> ProtocolError:
    """Map an upstream failure onto the protocol's error codes. The message is our own words
    (:attr:`UpstreamError.public_message`), never the upstream's text."""
    retry_ms = int(exc.retry_after_s * 1000) if exc.retry_after_s is not None else None
    if exc.status == 429:
        return ProtocolError(
            ErrorCode.RATE_LIMITED,
            "the upstream rate limit was reached; retry later",
            request_id=request_id,
            retryable=True,
            retry_after_ms=retry_ms,
        )
    if exc.timeout:
        return ProtocolError(ErrorCode.UPSTREAM_TIMEOUT, exc.public_message, request_id=request_id)
    return ProtocolError(
        ErrorCode.UPSTREAM_ERROR,
        exc.public_message,
        request_id=request_id,
        retryable=exc.retryable,
        retry_after_ms=retry_ms,
    )


def persona_option(turn: Turn, name: str, default: Any = None) -> Any:
    """A gateway field of the turn's persona (personas keep unknown fields), or ``default``."""
    extra = turn.persona.model_extra or {}
    value = extra.get(name)
    return default if value is None else value


def estimate_prompt_tokens(request: ProviderRequest) -> int:
    """A cheap prompt-size estimate: 4 characters per token plus one per message."""
    chars = sum(len(str(m.get("content") or "")) for m in request.messages)
    return chars // 4 + len(request.messages)


def estimate_output_tokens(pieces: list[str]) -> int:
    """Tokens of streamed pieces (text deltas, tool-call argument pieces): at least one per
    piece (the upstream streams a token per chunk), at least 4 characters per token."""
    return max(len(pieces), -(-sum(len(piece) for piece in pieces) // 4))


class _Committed(Exception):
    """Internal: an attempt failed after its first delta was passed on."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Gateway:
    """Streams a turn from the provider that serves its model, carefully (see module doc)."""

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        metrics: Metrics,
        providers: Mapping[str, Provider],
        store: Callable[[], Store | None],
    ) -> None:
        """``providers`` and ``store`` are filled at start-up (``store()`` is None before)."""
        self.config = config
        self.catalog = catalog
        self.providers = providers
        self.store = store
        self.limiter = RateLimiter(config.ratelimit)
        self.breakers = Breakers(config.breaker)
        self.cache = ResponseCache(config.cache)
        self.metrics = metrics
        self.metrics.track_queue(self.limiter.queue_length)
        self.memory_counters = MemoryCounters()
        self.budgets = Budgets(config.budget, self.counters)
        self.uncatalogued = UncataloguedPrices(catalog, config.gateway)
        self.rng = random.Random()
        self._exported: set[str] = set()

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

    def latency_budget_s(self, turn: Turn) -> float:
        """How long the turn may wait for capacity or back-off (persona ``latency_budget_ms``
        over ``gateway.latency_budget_ms[urgency]``)."""
        ms = persona_option(turn, "latency_budget_ms")
        if ms is None:
            ms = self.config.gateway.budget_ms(turn.urgency)
        return float(ms) / 1000

    def chain(self, turn: Turn, model: ModelEntry) -> list[ModelEntry]:
        """The selected model and its fallbacks, without repeats."""
        names = persona_option(turn, "fallbacks")
        if names is None:
            names = model.fallbacks
        chain = [model]
        for name in names:
            entry = self.catalog.entry(str(name))
            if entry.id not in {e.id for e in chain}:
                chain.append(entry)
        return chain

    def budget_scopes(self, turn: Turn) -> list[Scope]:
        """The budgets this turn counts against (the persona may set its NPC's own)."""
        scopes = self.budgets.scopes(turn.player, turn.session_id)
        npc_limit = persona_option(turn, "budget_usd_per_day")
        if npc_limit is not None:
            scopes.append(self.budgets.npc_scope(turn.npc, float(npc_limit)))
        return scopes

    def price(self, turn: Turn, model: ModelEntry) -> ModelEntry:
        """The entry whose prices ``turn`` pays for ``model`` (an uncatalogued model is priced
        conservatively when a budget applies to the turn, see :class:`UncataloguedPrices`)."""
        return self.uncatalogued.entry(model, _budgeted(self.budget_scopes(turn)))

    def capped(self, request: ProviderRequest, scopes: list[Scope]) -> ProviderRequest:
        """``request`` with a ``max_tokens`` cap (``gateway.budget_max_tokens``) when a budget
        applies and the turn sets none: the reservation is then a true worst case."""
        if request.max_tokens is not None or not _budgeted(scopes):
            return request
        return replace(request, max_tokens=self.config.gateway.budget_max_tokens)

    def cacheable(self, turn: Turn, request: ProviderRequest) -> bool:
        """Whether the reply may come from, and go into, the response cache."""
        if not self.config.cache.enabled:
            return False
        return (
            request.temperature == 0
            or turn.cacheable
            or bool(persona_option(turn, "cacheable", False))
        )

    def estimate_tokens(self, request: ProviderRequest) -> tuple[int, int]:
        """(prompt, output) token estimates for admission and rate limiting."""
        output = request.max_tokens or self.config.gateway.expected_output_tokens
        return estimate_prompt_tokens(request), output

    # ------------------------------------------------------------------ the turn

    async def stream(
        self, turn: Turn, model: ModelEntry, request: ProviderRequest
    ) -> AsyncIterator[StreamEvent]:
        """Yield the events of the turn's reply; raise :class:`UpstreamError` or
        :class:`ProtocolError` when it cannot be served."""
        scopes = self.budget_scopes(turn)
        # rate limits keep the expected reply size; budgets reserve the cap that goes upstream
        prompt_tokens, output_tokens = self.estimate_tokens(request)
        rate_tokens = prompt_tokens + output_tokens
        request = self.capped(request, scopes)
        key = cache_key(request) if self.cacheable(turn, request) else None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.metrics.cache_hits.inc()
                turn.cached = True
                turn.served_model = hit.model or model.id
                turn.queue_ms = _ms(time.perf_counter() - turn.started_at)
                for text in hit.deltas:
                    yield TextDelta(text)
                yield StreamDone(finish=hit.finish, usage=Usage(0, 0))
                return
            self.metrics.cache_misses.inc()

        # reserve the worst case: the whole max_tokens on the priciest model of the chain
        output_cap = request.max_tokens or output_tokens  # capped whenever a budget applies
        worst = max(
            self.price(turn, entry).cost_usd(prompt_tokens, output_cap)
            for entry in self.chain(turn, model)
        )
        try:
            reservation = await self.budgets.reserve(scopes, worst, turn.request_id)
        except ProtocolError:
            self.metrics.budget_refusals.inc()
            raise
        try:
            async for event in self._serve(turn, model, request, reservation, key, rate_tokens):
                yield event
        finally:
            try:
                await self.budgets.settle(reservation)
            except Exception as exc:  # the store failed: the turn itself is over
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
        turn_deadline = self.turn_deadline(turn)
        wait_deadline = min(turn.started_at + self.latency_budget_s(turn), turn_deadline)
        total_deadline = now + retry.max_total_ms / 1000
        client = turn.player or f"npc:{turn.npc}"
        last: BaseException | None = None
        chain = self.chain(turn, model)
        for index, candidate in enumerate(chain):
            if index > 0:
                self.metrics.fallbacks.labels(
                    self.metrics.model(chain[index - 1].id), self.metrics.model(candidate.id)
                ).inc()
                log.info("turn %s falls back to %s", turn.request_id, candidate.id)
            breaker = self._breaker(candidate.id)
            limiter = self.limiter.for_model(candidate.provider, candidate.id)
            attempt = 0
            while True:
                if time.perf_counter() >= turn_deadline:
                    raise UpstreamError(timeout=True, reason=Reason.DEADLINE)
                if self.config.breaker.enabled and not breaker.acquire():
                    # the cause: this turn's own failure, else the one that opened the breaker
                    cause = last if isinstance(last, UpstreamError) else breaker.last_failure
                    last = _BreakerOpen(candidate.id, breaker.retry_after_s(), cause)
                    break
                try:
                    await self._admit_rate(turn, candidate, limiter, client, tokens, wait_deadline)
                except RateLimitWait as exc:
                    breaker.release()
                    last = exc
                    break
                turn.queue_ms = _ms(time.perf_counter() - turn.started_at)
                served = replace(request, model=candidate.id)
                try:
                    async for event in self._attempt(
                        turn, candidate, served, breaker, limiter, tokens, reservation, key
                    ):
                        yield event
                    return
                except _Committed as exc:
                    raise exc.error from None
                except UpstreamError as exc:
                    last = exc
                    verdict = classify(exc)
                    if verdict is Verdict.FAIL:
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
                    self.metrics.retries.labels(
                        self.metrics.model(candidate.id), _reason(exc)
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
        raise self._final_error(last, turn)

    def _breaker(self, model_id: str) -> CircuitBreaker:
        """The model's breaker; its state is exported as ``npcbridge_breaker_open``."""
        breaker = self.breakers.get(model_id)
        if model_id not in self._exported and self.metrics.model(model_id) == model_id:
            self._exported.add(model_id)
            self.metrics.breaker_open.labels(model_id).set_function(
                lambda: 1.0 if breaker.state is BreakerState.OPEN else 0.0
            )
        return breaker

    def turn_deadline(self, turn: Turn) -> float:
        """When the turn must be over (``perf_counter`` time): ``gateway.turn_deadline_s`` after
        its request arrived. A reply still streaming then ends with ``upstream_timeout``."""
        return turn.started_at + self.config.gateway.turn_deadline_s

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
                limits = self.config.ratelimit.limits_for(model.id)
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

    async def _attempt(
        self,
        turn: Turn,
        model: ModelEntry,
        request: ProviderRequest,
        breaker: CircuitBreaker,
        limiter: ModelLimiter,
        tokens: int,
        reservation: Reservation,
        key: str | None,
    ) -> AsyncIterator[StreamEvent]:
        """One upstream request. Raises :class:`UpstreamError` when it failed before its first
        delta went out, :class:`_Committed` when it failed after."""
        provider = self.provider_for(model)
        sent = time.perf_counter()
        # loop-clock instants: the first event's limit, and the turn's deadline for every event
        now = asyncio.get_running_loop().time()
        deadline = now + (self.turn_deadline(turn) - sent)
        first_deadline = min(deadline, now + self.config.upstream.first_token_timeout_s)
        stream_deadline = StreamDeadline(deadline)
        events = provider.stream(request).__aiter__()
        committed = False
        outcome = "cancelled"
        deltas: list[str] = []
        generated: list[str] = []  # text and tool-call pieces, to estimate an unreported usage
        tool_calls = False
        usage: Usage | None = None
        try:
            while True:
                try:
                    if committed:
                        event = await stream_deadline.next(events)
                    else:  # a timer around the read only, never around a yield
                        async with asyncio.timeout_at(first_deadline):
                            event = await events.__anext__()
                except StopAsyncIteration:
                    event = StreamDone(finish="stop")  # a provider that sends no end event
                except TimeoutError:
                    if asyncio.get_running_loop().time() >= deadline:
                        raise UpstreamError(timeout=True, reason=Reason.DEADLINE) from None
                    raise UpstreamError("no first token in time", timeout=True) from None
                if isinstance(event, (TextDelta, ToolCallDelta)):
                    if not committed:
                        committed = True
                        self.metrics.ttft.labels(self.metrics.model(model.id)).observe(
                            time.perf_counter() - sent
                        )
                    if isinstance(event, TextDelta):
                        deltas.append(event.text)
                        generated.append(event.text)
                    else:
                        tool_calls = True
                        generated.append(event.arguments)
                elif isinstance(event, StreamDone):
                    usage = event.usage
                    outcome = "ok"
                    self._after_success(model, event, breaker, limiter, tokens)
                    turn.served_model = model.id
                    if key is not None and not tool_calls and event.finish in ("stop", "length"):
                        self.cache.put(key, CachedReply(tuple(deltas), event.finish, model.id))
                    yield event
                    return
                yield event
        except UpstreamError as exc:
            outcome = _reason(exc)
            if not committed:
                limiter.settle(tokens, 0)  # nothing was generated
            if self.config.ratelimit.use_headers and exc.headers:
                limiter.observe(exc.headers)
            if counts_against_health(exc):
                breaker.failure(exc)
            else:
                breaker.release()
            if committed:
                raise _Committed(exc) from None
            raise
        except BaseException:
            breaker.release()
            raise
        finally:
            stream_deadline.close()
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
            elapsed = time.perf_counter() - sent
            self.metrics.upstream_requests.labels(self.metrics.model(model.id), outcome).inc()
            self.metrics.upstream_latency.labels(self.metrics.model(model.id)).observe(elapsed)
            self._charge(turn, model, request, reservation, usage, generated, committed)

    def _after_success(
        self,
        model: ModelEntry,
        done: StreamDone,
        breaker: CircuitBreaker,
        limiter: ModelLimiter,
        tokens: int,
    ) -> None:
        breaker.success()
        if done.usage is not None:
            limiter.settle(tokens, done.usage.input_tokens + done.usage.output_tokens)
        if self.config.ratelimit.use_headers and done.headers:
            limiter.observe(done.headers)  # after settling: the upstream's word is the last

    def _charge(
        self,
        turn: Turn,
        model: ModelEntry,
        request: ProviderRequest,
        reservation: Reservation,
        usage: Usage | None,
        generated: list[str],
        committed: bool,
    ) -> None:
        """Count the attempt's cost: the real usage, or an estimate for a stream that stopped
        after it began (the upstream bills what it generated). The turn's reservation is
        settled to it when the turn ends; ``turn.usage`` is what ``reply.end`` shows."""
        if usage is None:
            if not committed:
                return
            usage = Usage(
                estimate_prompt_tokens(request), estimate_output_tokens(generated), estimated=True
            )
        cost = self.price(turn, model).cost_usd(usage.input_tokens, usage.output_tokens)
        self.metrics.tokens.labels(self.metrics.model(model.id), "input").inc(usage.input_tokens)
        self.metrics.tokens.labels(self.metrics.model(model.id), "output").inc(usage.output_tokens)
        self.metrics.cost.labels(self.metrics.model(model.id)).inc(cost)
        reservation.cost_usd += cost
        turn.usage = usage
        turn.served_model = model.id

    def _final_error(self, last: BaseException | None, turn: Turn) -> Exception:
        """The error that ends a turn no model could serve."""
        if isinstance(last, RateLimitWait):
            return ProtocolError(
                ErrorCode.RATE_LIMITED,
                "the upstream rate limit leaves no room within this turn's latency budget",
                request_id=turn.request_id,
                retryable=True,
                retry_after_ms=max(1, int(last.wait_s * 1000)),
            )
        if isinstance(last, _BreakerOpen):
            return UpstreamError(
                status=503,
                retry_after_s=max(0.001, last.retry_after),
                reason=Reason.BREAKER_OPEN,
                cause=last.cause,
            )
        if isinstance(last, UpstreamError):
            return last
        return UpstreamError(status=503, reason=Reason.UNAVAILABLE)


class _BreakerOpen(Exception):
    def __init__(self, model: str, retry_after: float, cause: Exception | None) -> None:
        super().__init__(f"circuit breaker of {model} is open")
        self.retry_after = retry_after
        self.cause = cause if isinstance(cause, UpstreamError) else None


def _budgeted(scopes: list[Scope]) -> bool:
    """Whether a budget limits one of ``scopes``."""
    return any(scope.limit_usd is not None for scope in scopes)


def _reason(exc: UpstreamError) -> str:
    if exc.timeout:
        return "timeout"
    if exc.reason is Reason.BAD_RESPONSE:
        return "bad_response"
    if exc.status is None:
        return "connection"
    return str(exc.status)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
