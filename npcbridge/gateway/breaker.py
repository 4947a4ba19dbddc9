"""A circuit breaker per model: closed → open → half-open → closed.

* **closed**: requests pass; ``failure_threshold`` consecutive failures open the breaker.
* **open**: requests are refused (the gateway falls back to another model) until ``cooldown_s``
  has passed since it opened.
* **half-open**: one probe request at a time passes; its success closes the breaker, its
  failure opens it again for another cool-down.

Only failures that say something about the model's health count: 5xx, timeouts, connection
errors and cut streams. A 429 is the rate limiter's business, a 400 the request's fault.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from .settings import BreakerSettings


class BreakerState(StrEnum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """The breaker of one model. ``clock`` is injectable for tests."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        #: how often the breaker opened (for metrics and tests)
        self.opened_count = 0
        #: the last failure counted (what a refused request reports as the cause)
        self.last_failure: Exception | None = None

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cool-down passed reads as half-open."""
        if self._state is BreakerState.OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._state = BreakerState.HALF_OPEN
            self.probing = False
        return self._state

    def available(self) -> bool:
        """Whether a request could pass now (does not reserve the half-open probe)."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self.probing
        )

    def acquire(self) -> bool:
        """Ask to send one request; in half-open state this reserves the single probe."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it is not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock() - self.opened_at))

    def success(self) -> None:
        """A request succeeded: close the breaker."""
        self._state = BreakerState.CLOSED
        self.failures = 0
        self.probing = False

    def failure(self, cause: Exception | None = None) -> None:
        """A request failed in a way that counts against the model's health (``cause``: the
        failure, kept as :attr:`last_failure`)."""
        state = self.state
        if cause is not None:
            self.last_failure = cause
        self.failures += 1
        if state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """A request ended without telling anything about health (cancelled, 429, 400)."""
        self.probing = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self.opened_at = self.clock()
        self.probing = False
        self.opened_count += 1


class Breakers:
    """The breakers of all models of one server."""

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.by_model: dict[str, CircuitBreaker] = {}

    def get(self, model_id: str) -> CircuitBreaker:
        """The breaker of ``model_id`` (created closed on first use)."""
        breaker = self.by_model.get(model_id)
        if breaker is None:
            breaker = self.by_model[model_id] = CircuitBreaker(
                self.settings.failure_threshold, self.settings.cooldown_s, self.clock
            )
        return breaker

    def available(self, model_id: str) -> bool:
        """Whether ``model_id`` may be sent a request now (always True when disabled)."""
        return not self.settings.enabled or self.get(model_id).available()

    def states(self) -> dict[str, BreakerState]:
        """The state of every breaker seen so far."""
        return {model: b.state for model, b in self.by_model.items()}
