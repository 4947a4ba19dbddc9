"""The default model choice: a tier by urgency, refined by budget and model health.

1. A persona that names a ``model`` gets it (the gateway still falls back when it fails).
2. Otherwise the tier comes from ``say.urgency`` through ``gateway.tiers`` (realtime → small,
   normal → small, deep → largest); a persona with ``quality = true`` (realtime but quality
   matters) gets ``gateway.quality_tier`` (large) instead of small; a persona ``tier`` wins.
3. When less than ``gateway.low_budget_fraction`` of a budget that applies is left, the tier
   steps down once (largest → large → small).
4. Within the tier, the first catalog model whose circuit breaker lets requests through; if
   none does, the nearest tier with a healthy model; else the configured default model.

Registered ``trylast``: any plugin's ``npcbridge_select_model`` answering first overrides it.
"""

from __future__ import annotations

from typing import Any

from ..gateway.catalog import Catalog, Tier
from ..pipeline.turn import Turn
from ..plugin.api import PluginAPI
from ..plugin.specs import hookimpl

#: tiers from the cheapest and fastest to the largest
TIER_ORDER: tuple[Tier, ...] = ("small", "large", "largest")


def step_down(tier: Tier) -> Tier:
    """The next cheaper tier (small stays small)."""
    if tier not in TIER_ORDER:
        return tier
    return TIER_ORDER[max(0, TIER_ORDER.index(tier) - 1)]


def wanted_tier(turn: Turn, settings: Any) -> Tier:
    """The tier the urgency rule gives this turn (before budget and health)."""
    if turn.persona.tier is not None:
        return turn.persona.tier
    tier: Tier = settings.tiers.get(turn.urgency, settings.tiers.get("normal", "small"))
    if turn.persona.quality and tier == "small":
        tier = settings.quality_tier
    return tier


def healthy_in_tier(
    catalog: Catalog, tier: Tier, available: Any, preferred: str | None = None
) -> str | None:
    """The first model of ``tier`` that ``available(model_id)`` accepts; ``preferred`` (the
    configured default model) comes first when it is of that tier."""
    entries = catalog.by_tier(tier)
    first = catalog.get(preferred) if preferred else None
    if first is not None and first in entries:
        entries = [first, *(e for e in entries if e is not first)]
    for entry in entries:
        if available(entry.id):
            return entry.id
    return None


def pick(catalog: Catalog, tier: Tier, available: Any, preferred: str | None = None) -> str | None:
    """A healthy model of ``tier``, else of the nearest tier (cheaper first), else None."""
    if tier not in TIER_ORDER:
        return healthy_in_tier(catalog, tier, available, preferred)
    i = TIER_ORDER.index(tier)
    order = [i] + [j for d in (1, 2) for j in (i - d, i + d) if 0 <= j < len(TIER_ORDER)]
    for j in order:
        found = healthy_in_tier(catalog, TIER_ORDER[j], available, preferred)
        if found is not None:
            return found
    return None


class Plugin:
    """The default ``npcbridge_select_model`` of one server."""

    def __init__(self, api: PluginAPI) -> None:
        self.api = api

    @hookimpl(trylast=True)
    async def npcbridge_select_model(self, turn: Turn, catalog: Catalog) -> str | None:
        """The persona's model, else a tier by urgency, budget and model health."""
        if turn.persona.model:
            turn.model_rule = "the persona names its model"
            return turn.persona.model
        api = self.api
        if api.offline:
            turn.model_rule = "offline: no API key"
            return api.default_model
        settings = api.config.gateway
        tier = wanted_tier(turn, settings)
        rule = _tier_rule(turn, tier)
        left = await api.turns.budget_left(turn)
        if left is not None and left < settings.low_budget_fraction:
            tier = step_down(tier)
            rule += f", budget low ({left:.0%} left): stepped down to {tier}"
        turn.tier = tier
        default = api.default_model
        chosen = pick(catalog, tier, api.turns.available, default)
        if chosen is None:
            rule += ": no healthy model, the default model"
        elif catalog.entry(chosen).tier != tier:
            rule += f": no healthy {tier} model, nearest tier"
        turn.model_rule = rule
        return chosen or default


def _tier_rule(turn: Turn, tier: Tier) -> str:
    """How ``wanted_tier`` chose ``tier``, in words (the console's inspector shows it)."""
    if turn.persona.tier is not None:
        return f"persona tier {tier}"
    if turn.persona.quality and tier != "small":
        return f"urgency {turn.urgency}, persona quality: tier {tier}"
    return f"urgency {turn.urgency}: tier {tier}"
