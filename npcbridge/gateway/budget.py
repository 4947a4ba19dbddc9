"""Cost accounting and budgets: per player per day, per session, and per day for the server.

Spending is counted in whole nano-dollars (1e-9 USD, exact in a float counter) in the store's
atomic counters (``add_counter`` / ``get_counter`` of :mod:`npcbridge.stores`), so totals
survive a restart (SQLite) and are shared between processes (Redis). Keys::

    budget:player:<player>:<YYYY-MM-DD>    a player's spending on one UTC day
    budget:session:<session>               one connection's spending
    budget:global:<YYYY-MM-DD>             everything on one UTC day

Admission **reserves** the turn's worst case (its prompt estimate plus its ``max_tokens``, at
the highest price of the models it may be served by; a budgeted turn that sets no ``max_tokens``
is sent with ``gateway.budget_max_tokens``) in every limited scope, atomically in the
store (``reserve_counters``: check and add in one transaction or script); a turn that does not
fit is refused with ``budget_exceeded`` before anything goes upstream. When the turn ends
(complete, failed, cancelled) the reservation is **settled**: the difference between the real
cost and the reserved amount is added. So concurrent turns, in one process or many sharing a
store, cannot together spend past a limit: a turn is admitted only while the reservations of
the running turns plus what was spent fit, and a turn's real cost exceeds its reservation only
by what its real prompt outgrows the prompt estimate (see docs/gateway.md).

Settling writes through the store's :class:`~npcbridge.stores.writes.WriteQueue`: while the
store cannot be reached, each counter add waits in that queue (one warning per outage, logged by
the queue) and is replayed once the store answers, so the counters end up with the real cost.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..protocol.errors import ErrorCode, ProtocolError
from ..stores.base import CounterLimit, refuses
from ..stores.writes import WriteQueue
from .catalog import Catalog, ModelEntry
from .settings import BudgetSettings, GatewaySettings

log = logging.getLogger("npcbridge.gateway.core")

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

    async def reserve_counters(self, items: list[CounterLimit]) -> int | None:
        """Atomically add every item's amount unless one counter would pass its limit; return
        None when added, else the index of the first item that does not fit (nothing added)."""
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

    async def reserve_counters(self, items: list[CounterLimit]) -> int | None:
        """Check and add without awaiting in between, hence atomically in this process."""
        for index, (key, amount, limit, _ttl) in enumerate(items):
            if refuses(self._live(key), amount, limit):
                return index
        for key, amount, _limit, ttl_s in items:
            await self.add_counter(key, amount, ttl_s)  # no await inside: cannot interleave
        return None


def counters_of(store: Any) -> Counters | None:
    """The store's counters if it has them (``add_counter``, ``get_counter`` and
    ``reserve_counters``)."""
    if store is not None and all(
        hasattr(store, name) for name in ("add_counter", "get_counter", "reserve_counters")
    ):
        return store  # type: ignore[no-any-return]
    return None


def to_nano(usd: float) -> int:
    """Dollars to integer nano-dollars (rounded up, so tiny requests still count)."""
    return int(-(-usd * NANO // 1))


#: the current UTC day's key and the instant it ends (every turn asks for it several times)
_day: tuple[str, float] = ("", 0.0)


def today(now: float | None = None) -> str:
    """The UTC date used in daily keys."""
    global _day
    if now is not None:
        return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
    now = time.time()
    if now >= _day[1] or now < _day[1] - DAY_S:
        _day = (today(now), now + seconds_to_midnight(now))
    return _day[0]


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

    def __init__(
        self,
        settings: BudgetSettings,
        counters: Callable[[], Counters],
        writes: Callable[[], WriteQueue | None] = lambda: None,
    ) -> None:
        """``writes()``: the store's write queue (None before start-up or without a store)."""
        self.settings = settings
        self._counters = counters
        self._writes = writes

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

    def limits_any(self, npc_limit_usd: float | None = None) -> bool:
        """Whether any budget applies to a turn (the configured ones, or its NPC's own limit):
        whether one of its scopes has a limit, without building them."""
        s = self.settings
        limits = (s.per_player_usd_per_day, s.per_session_usd, s.global_usd_per_day, npc_limit_usd)
        return any(limit is not None for limit in limits)

    def npc_scope(self, npc: str, limit_usd: float | None) -> Scope:
        """An NPC's own daily budget (persona ``budget_usd_per_day``)."""
        return Scope("npc", f"budget:npc:{npc}:{today()}", limit_usd, True)

    async def spent_usd(self, scope: Scope) -> float:
        """What was spent in one scope."""
        return await self.counters.get_counter(scope.key) / NANO

    async def remaining_fraction(self, scopes: list[Scope]) -> float:
        """The smallest fraction left over the scopes (1.0 when there is no budget, or while the
        store cannot be reached)."""
        fraction = 1.0
        for scope in scopes:
            if scope.limit_usd is None:
                continue
            if scope.limit_usd <= 0:
                return 0.0
            try:
                spent = await self.spent_usd(scope)
            except Exception as exc:
                if not self._store_down(exc):
                    raise
                # the choice is made as with a full budget; the reservation that follows
                # answers the turn (retry later)
                return 1.0
            left = 1.0 - spent / scope.limit_usd
            fraction = min(fraction, max(0.0, left))
        return fraction

    async def reserve(
        self, scopes: list[Scope], worst_usd: float, request_id: str | int | None
    ) -> Reservation:
        """Hold ``worst_usd`` in every limited scope, atomically; raise ``budget_exceeded``
        (nothing held) when a scope cannot pay for it, and a retryable ``internal`` while the
        store cannot be reached (the outage is reported by its write queue)."""
        amount = to_nano(worst_usd)
        limited = [scope for scope in scopes if scope.limit_usd is not None]
        if limited:
            try:
                refused = await self.counters.reserve_counters(
                    [(s.key, amount, (s.limit_usd or 0.0) * NANO, _ttl(s)) for s in limited]
                )
            except Exception as exc:
                if not self._store_down(exc):
                    raise
                # nothing can be held, so the turn is refused for now
                raise ProtocolError(
                    ErrorCode.INTERNAL,
                    "the budget store cannot be reached; retry later",
                    request_id=request_id,
                    retryable=True,
                ) from None
            if refused is not None:
                scope = limited[refused]
                raise ProtocolError(
                    ErrorCode.BUDGET_EXCEEDED,
                    f"the {scope.name} budget of ${scope.limit_usd:g} is spent",
                    request_id=request_id,
                    retryable=False,
                    retry_after_ms=int(seconds_to_midnight() * 1000) if scope.daily else None,
                )
        return Reservation(scopes, amount)

    def _store_down(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the store cannot be reached; the write queue then logs the
        outage once (and its end once), not a traceback per turn."""
        writes = self._writes()
        return writes is not None and writes.read_failed(exc)

    async def settle(self, reservation: Reservation) -> None:
        """Replace a turn's reservation by its real cost (``reservation.cost_usd``) in every
        limited scope, and add the cost to the global day total (one store write per turn
        when no budget is configured). Safe to call twice: the second call does nothing."""
        if reservation.settled:
            return
        reservation.settled = True
        cost = to_nano(reservation.cost_usd)
        for scope in reservation.scopes:
            held = reservation.amount if scope.limit_usd is not None else 0
            if scope.limit_usd is None and scope.name != "global":
                continue
            if cost != held:
                await self._add(scope.key, cost - held, _ttl(scope))

    async def _add(self, key: str, amount: float, ttl_s: float) -> None:
        """One counter add of a settlement: through the store's write queue when the counters
        are the store's (queued while it cannot be reached), else at once. Each add is its own
        queued write, so replaying one does not repeat the adds of the same settlement that
        already went through."""
        counters = self.counters
        writes = self._writes()
        if writes is None or writes.store is not counters:
            await counters.add_counter(key, amount, ttl_s=ttl_s)
            return
        await writes.write(lambda: counters.add_counter(key, amount, ttl_s=ttl_s))

    async def take_audio_seconds(
        self, player: str, seconds: float, request_id: str | int | None
    ) -> None:
        """Count ``seconds`` of the player's speech against ``per_player_audio_s_per_day``
        (key ``budget:audio:<player>:<day>``, in milliseconds); raise ``budget_exceeded``
        (nothing counted) when they do not fit."""
        limit = self.settings.per_player_audio_s_per_day
        if limit is None:
            return
        key = f"budget:audio:{player}:{today()}"
        amount = int(seconds * 1000 + 0.999)
        try:
            refused = await self.counters.reserve_counters([(key, amount, limit * 1000, 2 * DAY_S)])
        except Exception as exc:
            if not self._store_down(exc):
                raise
            raise ProtocolError(
                ErrorCode.INTERNAL,
                "the budget store cannot be reached; retry later",
                request_id=request_id,
                retryable=True,
            ) from None
        if refused is not None:
            raise ProtocolError(
                ErrorCode.BUDGET_EXCEEDED,
                f"the player's {limit:g} seconds of speech for today are used",
                request_id=request_id,
                retry_after_ms=int(seconds_to_midnight() * 1000),
            )

    async def charge(self, scopes: list[Scope], cost_usd: float) -> None:
        """Add a cost that was not reserved (as :meth:`settle` of an empty reservation)."""
        await self.settle(Reservation(scopes, 0, cost_usd))


@dataclass
class Reservation:
    """What a turn holds in its budgets until it is settled."""

    scopes: list[Scope]
    #: nano-dollars held in each limited scope
    amount: int
    #: the real cost so far (what the turn's upstream attempts were billed)
    cost_usd: float = 0.0
    settled: bool = False


def _ttl(scope: Scope) -> float:
    """Daily counters outlive their day a little; session counters a month."""
    return 2 * DAY_S if scope.daily else 30 * DAY_S


class UncataloguedPrices:
    """Prices for models missing from the catalog, so that naming one cannot bypass a budget.

    Without a budget such a model costs nothing (a local server, e.g. Ollama, bills nothing);
    with one it costs ``gateway.uncatalogued_input_usd_per_m`` / ``_output_usd_per_m``, by
    default the highest input and the highest output price in the catalog. A warning is logged
    once per model.
    """

    def __init__(self, catalog: Catalog, settings: GatewaySettings) -> None:
        self.catalog = catalog
        self.settings = settings
        self._warned: set[str] = set()

    def entry(self, model: ModelEntry, budgeted: bool) -> ModelEntry:
        """``model`` itself, or a copy priced conservatively when it is uncatalogued and a
        budget applies (``budgeted``)."""
        if not budgeted or model.provider == "offline" or self.catalog.get(model.id) is not None:
            return model
        s = self.settings
        prices = {
            "input_usd_per_m": s.uncatalogued_input_usd_per_m,
            "output_usd_per_m": s.uncatalogued_output_usd_per_m,
        }
        for field, value in prices.items():
            if value is None:
                prices[field] = max((getattr(e, field) for e in self.catalog.entries), default=0.0)
        if model.id not in self._warned and len(self._warned) < 1000:  # bounded: ids are input
            self._warned.add(model.id)
            log.warning(
                "model %.120r is not in the catalog; budgets price it at $%g/$%g per million "
                "input/output tokens (gateway.uncatalogued_*_usd_per_m)",
                model.id,
                prices["input_usd_per_m"],
                prices["output_usd_per_m"],
            )
        return model.model_copy(update=prices)
