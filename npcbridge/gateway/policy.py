"""What one turn may spend and wait, from its persona and the gateway settings: its budgets and
the prices it pays, the model chain (the selected model and its fallbacks), the latency budget
and the turn deadline, the ``max_tokens`` cap under a budget, whether the reply may be cached,
and the token estimates used for admission."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..providers.base import ProviderRequest
from .budget import Budgets, Scope, UncataloguedPrices

if TYPE_CHECKING:
    from ..config import Config
    from ..pipeline.turn import Turn
    from .catalog import Catalog, ModelEntry


def estimate_prompt_tokens(request: ProviderRequest) -> int:
    """A cheap prompt-size estimate: 4 characters per token plus one per message."""
    chars = sum(len(str(m.get("content") or "")) for m in request.messages)
    return chars // 4 + len(request.messages)


def estimate_output_tokens(pieces: list[str]) -> int:
    """Tokens of streamed pieces (text deltas, tool-call argument pieces): at least one per
    piece (the upstream streams a token per chunk), at least 4 characters per token."""
    return max(len(pieces), -(-sum(len(piece) for piece in pieces) // 4))


class TurnPolicy:
    """The gateway's per-turn choices (see module doc); no I/O, no state of its own."""

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        budgets: Budgets,
        uncatalogued: UncataloguedPrices,
    ) -> None:
        """``budgets`` and ``uncatalogued`` are the gateway's own (one per process)."""
        self.config = config
        self.catalog = catalog
        self.budgets = budgets
        self.uncatalogued = uncatalogued

    def latency_budget_s(self, turn: Turn) -> float:
        """How long the turn may wait for capacity or back-off (persona ``latency_budget_ms``
        over ``gateway.latency_budget_ms[urgency]``)."""
        ms = turn.persona.latency_budget_ms
        if ms is None:
            ms = self.config.gateway.budget_ms(turn.urgency)
        return float(ms) / 1000

    def turn_deadline(self, turn: Turn) -> float:
        """When the turn must be over (``perf_counter`` time): ``gateway.turn_deadline_s`` after
        its request arrived. A reply still streaming then ends with ``upstream_timeout``."""
        return turn.started_at + self.config.gateway.turn_deadline_s

    def chain(self, turn: Turn, model: ModelEntry) -> list[ModelEntry]:
        """The selected model and its fallbacks, without repeats."""
        names = turn.persona.fallbacks
        if names is None:
            names = model.fallbacks
        chain = [model]
        for name in names:
            entry = self.catalog.entry(name)
            if entry.id not in {e.id for e in chain}:
                chain.append(entry)
        return chain

    def budget_scopes(self, turn: Turn) -> list[Scope]:
        """The budgets this turn counts against (the persona may set its NPC's own)."""
        scopes = self.budgets.scopes(turn.player, turn.session_id)
        npc_limit = turn.persona.budget_usd_per_day
        if npc_limit is not None:
            scopes.append(self.budgets.npc_scope(turn.npc, float(npc_limit)))
        return scopes

    def budgeted(self, turn: Turn) -> bool:
        """Whether a budget limits one of the turn's :meth:`budget_scopes` (answered without
        building them: the price of every model of a turn asks)."""
        return self.budgets.limits_any(turn.persona.budget_usd_per_day)

    def price(self, turn: Turn, model: ModelEntry) -> ModelEntry:
        """The entry whose prices ``turn`` pays for ``model`` (an uncatalogued model is priced
        conservatively when a budget applies to the turn, see :class:`UncataloguedPrices`)."""
        return self.uncatalogued.entry(model, self.budgeted(turn))

    def worst_case_usd(
        self, turn: Turn, model: ModelEntry, prompt_tokens: int, output_tokens: int
    ) -> float:
        """What the turn reserves: the whole output on the priciest model of its chain."""
        return max(
            self.price(turn, entry).cost_usd(prompt_tokens, output_tokens)
            for entry in self.chain(turn, model)
        )

    def capped(self, request: ProviderRequest, turn: Turn) -> ProviderRequest:
        """``request`` with a ``max_tokens`` cap (``gateway.budget_max_tokens``) when a budget
        applies and the turn sets none: the reservation is then a true worst case."""
        if request.max_tokens is not None or not self.budgeted(turn):
            return request
        return replace(request, max_tokens=self.config.gateway.budget_max_tokens)

    def cacheable(self, turn: Turn, request: ProviderRequest) -> bool:
        """Whether the reply may come from, and go into, the response cache."""
        if not self.config.cache.enabled:
            return False
        return request.temperature == 0 or turn.cacheable or bool(turn.persona.cacheable)

    def estimate_tokens(self, request: ProviderRequest) -> tuple[int, int]:
        """(prompt, output) token estimates for admission and rate limiting."""
        output = request.max_tokens or self.config.gateway.expected_output_tokens
        return estimate_prompt_tokens(request), output
