"""Cost accounting and budgets: per player per day, per session, and per day for the server.

Spending is counted in whole nano-dollars (1e-9 USD, exact in a float counter) in the store's
atomic counters (``add_counter`` / ``get_counter`` of :mod:`npcbridge.stores`), so totals
survive a restart (SQLite) and are shared between processes (Redis). Keys::

    budget:player:<player>:<YYYY-MM-DD>    a player's spending on one UTC day
    budget:session:<session>               one connection's spending
    budget:global:<YYYY-MM-DD>             everything on one UTC day

Admission compares what was spent plus an estimate of the next request (prompt tokens + the
expected output at the model's prices) with each limit; a turn that does not fit is refused
with ``budget_exceeded`` before anything goes upstream. After the turn its real cost (from the
upstream's usage) is added.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .gateway_settings import BudgetSettings
from .protocol.errors import ErrorCode, ProtocolError

NANO = 1_000_000_000
DAY_S = 86400


class Counters(Protocol):
    """Atomic counters, as the stores provide them."""

    async def add_counter(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        """Add ``amount`` to ``key`` (created at 0) and return the new value."""
        ...

    async def get_counter(self, key: str) -> float:
        """The value of ``key`` (0 when absent or expired)."""
        ...


class MemoryCounters:
    """Counters in this process only: the fallback when the store has none (lost on restart)."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.values: dict[str, tuple[float, float | None]] = {}

    def _live(self, key: str) -> float:
        value, expires = self.values.get(key, (0.0, None))
        if expires is not None and self.clock() >= expires:
            self.values.pop(key, None)
            return 0.0
        return value

    async def add_counter(self, key: str, amount: float, ttl_s: float | None = None) -> float:
        """Add ``amount`` to ``key``; the first add sets the expiry."""
        value = self._live(key)
        expires = self.values.get(key, (0.0, None))[1]
        if key not in self.values and ttl_s is not None:
            expires = self.clock() + ttl_s
        value += amount
        self.values[key] = (value, expires)
        return value

    async def get_counter(self, key: str) -> float:
        """The value of ``key`` (0 when absent or expired)."""
        return self._live(key)


def counters_of(store: Any) -> Counters | None:
    """The store's counters if it has them (``add_counter`` and ``get_counter``)."""
    if store is not None and hasattr(store, "add_counter") and hasattr(store, "get_counter"):
        return store  # type: ignore[no-any-return]
    return None


def to_nano(usd: float) -> int:
    """Dollars to integer nano-dollars (rounded up, so tiny requests still count)."""
    return int(-(-usd * NANO // 1))


def today(now: float | None = None) -> str:
    """The UTC date used in daily keys."""
    return dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).strftime(
        "%Y-%m-%d"
    )


def seconds_to_midnight(now: float | None = None) -> float:
    """Seconds until the UTC day ends (when daily budgets reset)."""
    now = time.time() if now is None else now
    return DAY_S - (now % DAY_S)


@dataclass
class Scope:
    """One budget that applies to a turn."""

    name: str  # "player", "session", "global"
    key: str
    limit_usd: float | None  # None: counted, not limited
    daily: bool


class Budgets:
    """Admission and accounting against the configured budgets."""

    def __init__(self, settings: BudgetSettings, counters: Callable[[], Counters]) -> None:
        self.settings = settings
        self._counters = counters

    @property
    def counters(self) -> Counters:
        """The counters in use now (the store's once it is open)."""
        return self._counters()

    def scopes(
        self,
        player: str,
        session_id: str,
        overrides: dict[str, float | None] | None = None,
    ) -> list[Scope]:
        """The budgets of a turn: ``overrides`` (from the persona) replace the configured ones."""
        s = self.settings
        limits = {
            "player": s.per_player_usd_per_day,
            "session": s.per_session_usd,
            "global": s.global_usd_per_day,
        }
        for name, value in (overrides or {}).items():
            if value is not None:
                limits[name] = value
        day = today()
        keys = {
            "player": (f"budget:player:{player}:{day}", True),
            "session": (f"budget:session:{session_id}", False),
            "global": (f"budget:global:{day}", True),
        }
        return [Scope(name, keys[name][0], limit, keys[name][1]) for name, limit in limits.items()]

    def npc_scope(self, npc: str, limit_usd: float | None) -> Scope:
        """An NPC's own daily budget (persona ``budget_usd_per_day``)."""
        return Scope("npc", f"budget:npc:{npc}:{today()}", limit_usd, True)

    async def spent_usd(self, scope: Scope) -> float:
        """What was spent in one scope."""
        return await self.counters.get_counter(scope.key) / NANO

    async def remaining_fraction(self, scopes: list[Scope]) -> float:
        """The smallest fraction left over the scopes (1.0 when there is no budget)."""
        fraction = 1.0
        for scope in scopes:
            if scope.limit_usd is None:
                continue
            if scope.limit_usd <= 0:
                return 0.0
            left = 1.0 - await self.spent_usd(scope) / scope.limit_usd
            fraction = min(fraction, max(0.0, left))
        return fraction

    async def admit(
        self, scopes: list[Scope], estimate_usd: float, request_id: str | int | None
    ) -> None:
        """Raise ``budget_exceeded`` when a scope cannot pay for ``estimate_usd`` more."""
        for scope in scopes:
            if scope.limit_usd is None:
                continue
            spent = await self.spent_usd(scope)
            if spent >= scope.limit_usd or spent + estimate_usd > scope.limit_usd:
                raise ProtocolError(
                    ErrorCode.BUDGET_EXCEEDED,
                    f"the {scope.name} budget of ${scope.limit_usd:g} is spent",
                    request_id=request_id,
                    retryable=False,
                    retry_after_ms=int(seconds_to_midnight() * 1000) if scope.daily else None,
                )

    async def charge(self, scopes: list[Scope], cost_usd: float) -> None:
        """Add a turn's real cost to every limited scope, and always to the global day total
        (one store write per turn when no budget is configured)."""
        amount = to_nano(cost_usd)
        if amount <= 0:
            return
        for scope in scopes:
            if scope.limit_usd is None and scope.name != "global":
                continue
            await self.counters.add_counter(
                scope.key, amount, ttl_s=2 * DAY_S if scope.daily else 30 * DAY_S
            )
