"""my-npc-plugin: a starting point. NPCs tell the time of day they were given by the game.

Replace the hooks below with your own; every hook is described in npcbridge's docs/plugins.md.
"""

from __future__ import annotations

import npcbridge
from npcbridge.pipeline.turn import Turn, TurnResult


@npcbridge.hookimpl
def npcbridge_persona(turn: Turn) -> str | None:
    """Add a line to the system prompt when the game sends ``context.hour``."""
    hour = turn.context.get("hour")
    if isinstance(hour, int):
        part = "night" if hour < 6 or hour >= 21 else "day"
        return f"It is {part}time ({hour}:00); mention it if it matters."
    return None


@npcbridge.hookimpl
async def npcbridge_after_turn(turn: Turn, result: TurnResult) -> None:
    """Runs after every turn; async hooks are awaited."""
    turn.state["my_npc_plugin_seen"] = result.finish
