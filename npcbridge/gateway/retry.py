"""Retry policy: which upstream failures are worth another attempt, and how long to wait.

Back-off is exponential with *full jitter* (sleep a uniform random time between 0 and
``min(max_delay, base * 2**retry)``), which spreads the retries of many clients apart. A
``retry-after`` from the upstream is a lower bound on the wait. Retries happen only before the
first delta reached the client; the gateway enforces that.
"""

from __future__ import annotations

import random
import re
from enum import StrEnum

from ..providers.base import UpstreamError
from .settings import RetrySettings

#: statuses retried on the same model (429 rate limited, 5xx gateway errors, 524 proxy timeout)
RETRY_STATUSES = frozenset({429, 498, 500, 502, 503, 504, 524})
#: statuses that say "this model cannot serve this request" and so move on to a fallback model
FALLBACK_STATUSES = frozenset({404, 413, 424})

_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:h|ms|m|s))+)", re.IGNORECASE)


class Verdict(StrEnum):
    """What to do after a failed attempt."""

    RETRY = "retry"  # same model again, after a back-off
    FALLBACK = "fallback"  # the next model of the chain
    FAIL = "fail"  # give up: the request itself is wrong (400, 401, 403, 422 ...)


def classify(exc: UpstreamError) -> Verdict:
    """Decide whether a failure is retried, falls back, or ends the turn."""
    if exc.timeout or exc.status is None or exc.status in RETRY_STATUSES:
        return Verdict.RETRY
    if exc.status in FALLBACK_STATUSES:
        return Verdict.FALLBACK
    return Verdict.FAIL


def counts_against_health(exc: UpstreamError) -> bool:
    """Whether a failure should count towards opening the model's circuit breaker."""
    if exc.timeout or exc.status is None:
        return True
    return exc.status >= 500 and exc.status not in (499,)


def backoff_s(settings: RetrySettings, retry: int, rng: random.Random | None = None) -> float:
    """Full-jitter delay before retry number ``retry`` (0 for the first retry), in seconds."""
    cap = min(settings.max_delay_ms, settings.base_delay_ms * (2**retry)) / 1000
    return (rng or random).uniform(0, cap)


def retry_after_s(exc: UpstreamError) -> float | None:
    """The upstream's requested wait: ``retry-after``, else "try again in 1m0.36s" in the body."""
    if exc.retry_after_s is not None:
        return exc.retry_after_s
    match = _TRY_AGAIN.search(str(exc))
    if match is None:
        return None
    from ..providers.openai_compat import parse_duration_s

    return parse_duration_s(match.group(1))
