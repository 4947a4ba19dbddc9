"""Spend by NPC and by player per UTC day, counted from finished turns in this process, for the
console's budget view (Prometheus labels stay per model; players are too many for labels)."""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Any

from ..gateway.budget import today

#: days the tables keep
DAYS_KEPT = 7


class SpendTable:
    """US dollars spent per day by NPC and by player (each table shows its ``keys`` largest
    spenders of the day).

    A table holds up to twice ``keys`` spenders and is cut back to the ``keys`` largest when it
    grows past that: finding the smallest on every turn of a new player would walk the whole
    table each time."""

    def __init__(self, keys: int) -> None:
        self.keys = keys
        self.days: dict[str, dict[str, defaultdict[str, float]]] = {}
        #: every turn's cost counts here, also of spenders the tables dropped
        self.totals: defaultdict[str, float] = defaultdict(float)

    def add(self, npc: str, player: str, cost_usd: float, day: str | None = None) -> None:
        """Count one turn's cost."""
        if cost_usd <= 0:
            return
        day = day or today()
        tables = self.days.get(day)
        if tables is None:
            tables = self.days[day] = {"npc": defaultdict(float), "player": defaultdict(float)}
            for old in sorted(self.days)[:-DAYS_KEPT]:
                del self.days[old]
                self.totals.pop(old, None)
        self.totals[day] += cost_usd
        for kind, key in (("npc", npc), ("player", player)):
            table = tables[kind]
            table[key] += cost_usd
            if len(table) > 2 * self.keys:
                kept = heapq.nlargest(self.keys, table.items(), key=lambda item: item[1])
                table.clear()
                table.update(kept)

    def view(self, budgets: dict[str, Any]) -> dict[str, Any]:
        """Per day: the totals and the tables, largest first, each row with its ``limit_usd``
        (``budgets``: ``player`` and ``global`` limits, ``npc`` limits by name)."""
        days = []
        for day in sorted(self.days, reverse=True):
            tables = self.days[day]
            rows: dict[str, list[dict[str, Any]]] = {}
            for kind, table in tables.items():
                limits = budgets.get(kind)
                rows[kind] = [
                    {
                        "name": name,
                        "usd": usd,
                        "limit_usd": limits.get(name) if isinstance(limits, dict) else limits,
                    }
                    for name, usd in heapq.nlargest(
                        self.keys, table.items(), key=lambda item: item[1]
                    )
                ]
            days.append(
                {"day": day, "usd": self.totals[day], "limit_usd": budgets.get("global"), **rows}
            )
        return {"days": days}
