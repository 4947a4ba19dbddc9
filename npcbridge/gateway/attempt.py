"""One upstream request of a turn: the stream under its deadlines (the first event within the
first-token timeout, every event before the turn deadline) and its accounting (the breaker and
the rate limiter learn the outcome, the usage or an estimate of it is charged, a complete reply
fills the cache, metrics are recorded).

A failure before the first delta is raised as the :class:`UpstreamError` itself, so the gateway
may retry or fall back; once a delta went out it is wrapped in :class:`CommittedFailure`, which
is final.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..pipeline.turn import Usage
from ..providers.base import (
    ProviderRequest,
    Reason,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
)
from .cache import CachedReply, ResponseCache
from .deadline import StreamDeadline
from .errors import failure_label
from .policy import TurnPolicy, estimate_output_tokens, estimate_prompt_tokens
from .retry import counts_against_health

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline.turn import Turn
    from ..providers.base import Provider
    from .breaker import CircuitBreaker
    from .budget import Reservation
    from .catalog import ModelEntry
    from .metrics import Metrics
    from .ratelimit import ModelLimiter


class CommittedFailure(Exception):
    """An attempt failed after its first delta was passed on (``error`` is the failure)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Attempts:
    """Runs the upstream requests of the gateway's turns, one :meth:`run` per attempt."""

    def __init__(
        self, config: Config, metrics: Metrics, cache: ResponseCache, policy: TurnPolicy
    ) -> None:
        """The gateway's settings, metrics, response cache and per-turn policy."""
        self.config = config
        self.metrics = metrics
        self.cache = cache
        self.policy = policy

    async def run(
        self,
        turn: Turn,
        model: ModelEntry,
        provider: Provider,
        request: ProviderRequest,
        breaker: CircuitBreaker,
        limiter: ModelLimiter,
        tokens: int,
        reservation: Reservation,
        key: str | None,
    ) -> AsyncIterator[StreamEvent]:
        """One upstream request. Raises :class:`UpstreamError` when it failed before its first
        delta went out, :class:`CommittedFailure` when it failed after."""
        sent = time.perf_counter()
        # loop-clock instants: the first event's limit, and the turn's deadline for every event
        now = asyncio.get_running_loop().time()
        deadline = now + (self.policy.turn_deadline(turn) - sent)
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
                    self._after_success(event, breaker, limiter, tokens)
                    turn.served_model = model.id
                    if key is not None and not tool_calls and event.finish in ("stop", "length"):
                        self.cache.put(key, CachedReply(tuple(deltas), event.finish, model.id))
                    yield event
                    return
                yield event
        except UpstreamError as exc:
            outcome = failure_label(exc)
            if not committed:
                limiter.settle(tokens, 0)  # nothing was generated
            if self.config.ratelimit.use_headers and exc.headers:
                limiter.observe(exc.headers)
            if counts_against_health(exc):
                breaker.failure(exc)
            else:
                breaker.release()
            if committed:
                raise CommittedFailure(exc) from None
            raise
        except BaseException:
            breaker.release()
            raise
        finally:
            stream_deadline.close()
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
            self.metrics.upstream_request(model.id, outcome, time.perf_counter() - sent)
            self._charge(turn, model, request, reservation, usage, generated, committed)

    def _after_success(
        self,
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
        cost = self.policy.price(turn, model).cost_usd(usage.input_tokens, usage.output_tokens)
        self.metrics.tokens.labels(self.metrics.model(model.id), "input").inc(usage.input_tokens)
        self.metrics.tokens.labels(self.metrics.model(model.id), "output").inc(usage.output_tokens)
        self.metrics.cost.labels(self.metrics.model(model.id)).inc(cost)
        reservation.cost_usd += cost
        turn.usage = usage
        turn.served_model = model.id
