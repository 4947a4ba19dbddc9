"""An in-process conversation window per (npc, player).

The default short-term memory when no persistent store plugin replaces it: the last
``WINDOW_TURNS`` completed exchanges, bounded in the number of (npc, player) pairs it keeps.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from ..hookspecs import hookimpl
from ..turn import Turn, TurnResult

WINDOW_TURNS = 8
MAX_PAIRS = 10_000


class Plugin:
    """Keeps recent exchanges in memory (lost on restart)."""

    def __init__(self, app: Any) -> None:
        self.windows: OrderedDict[tuple[str, str], deque[dict[str, str]]] = OrderedDict()

    @hookimpl
    def npcbridge_recall(self, turn: Turn) -> list[dict[str, str]]:
        """Return the recent exchanges with this player."""
        window = self.windows.get((turn.npc, turn.player))
        return list(window) if window else []

    @hookimpl
    def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Remember a completed exchange (cancelled, filtered and failed turns are not kept)."""
        if turn.kind != "say" or result.finish not in ("stop", "length"):
            return
        key = (turn.npc, turn.player)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = deque(maxlen=WINDOW_TURNS * 2)
            if len(self.windows) > MAX_PAIRS:
                self.windows.popitem(last=False)
        else:
            self.windows.move_to_end(key)
        window.append({"role": "user", "content": turn.text})
        window.append({"role": "assistant", "content": result.text})
