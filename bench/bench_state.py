"""Benchmark: what NPC state costs a turn, in process (no sockets, no HTTP).

    python -m bench.bench_state [--turns 2000] [--rounds 5]

The same `say` runs through the whole pipeline (every builtin hook, an in-memory store, the
scripted provider answering at once), in rounds that alternate three set-ups:

* ``without the plugin`` -- the state plugin disabled (``disable_plugins``);
* ``persona without state`` -- the plugin loaded, the NPC declares no ``state``;
* ``persona with state`` -- the NPC declares ``state``: two store reads before the prompt, the
  rendering hook, one store write and the ``reply.end.state`` field per turn.

It prints the median microseconds per turn of each set-up over the rounds. The first two should
not differ beyond the noise between rounds: a persona without state costs one attribute check
per hook. Because whole turns are noisy on a shared machine, it also times the state plugin's
own per-turn hooks for a persona without state directly (``hooks_ns_per_stateless_turn``: the
three hooks a turn calls, in nanoseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from npcbridge.testing.scripted import ScriptedProvider, running_scripted_app, say

PLAIN = {"name": "Brom", "description": "The village blacksmith."}
STATEFUL = {**PLAIN, "state": {"trust": 10}}
SETUPS: dict[str, dict[str, Any]] = {
    "without the plugin": {"disable_plugins": ["npcbridge.features.state.plugin"]},
    "persona without state": {},
    "persona with state": {},
}


async def per_turn_us(setup: str, turns: int) -> float:
    """Mean microseconds per turn of ``turns`` says in one fresh app."""
    provider = ScriptedProvider()
    persona = STATEFUL if setup == "persona with state" else PLAIN
    async with running_scripted_app(provider, npcs={"bench": persona}, **SETUPS[setup]) as app:
        for i in range(50):  # warm-up
            await say(app, "bench", "hello", player=f"w{i % 5}", request_id=f"w{i}")
        started = time.perf_counter()
        for i in range(turns):
            await say(app, "bench", "hello", player=f"p{i % 20}", request_id=f"t{i}")
        return (time.perf_counter() - started) / turns * 1e6


async def hooks_ns(calls: int = 200_000) -> float:
    """Nanoseconds the state plugin's per-turn hooks take for a persona without state."""
    from npcbridge.features.state.plugin import Plugin
    from npcbridge.pipeline.turn import Turn, TurnResult, Usage
    from npcbridge.protocol.messages import Persona

    provider = ScriptedProvider()
    async with running_scripted_app(provider) as app:
        plugin = Plugin(app.api)
        turn = Turn("t", "bench", Persona.model_validate(PLAIN), "p1", "hello", "s")
        result = TurnResult("Aye.", "stop", "m", Usage(), 0.0, 0.0, 0.0, 0.0)
        started = time.perf_counter_ns()
        for _ in range(calls):
            plugin.npcbridge_persona(turn)
            plugin.npcbridge_reply_fields(turn, result)
            plugin.npcbridge_after_turn(turn, result)
        return (time.perf_counter_ns() - started) / calls


async def main(turns: int, rounds: int) -> dict[str, float]:
    """Alternate the set-ups for ``rounds`` rounds; the median of each."""
    seen: dict[str, list[float]] = {name: [] for name in SETUPS}
    for _ in range(rounds):
        for name in SETUPS:
            seen[name].append(await per_turn_us(name, turns))
    return {name: round(statistics.median(values), 1) for name, values in seen.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main(args.turns, args.rounds))
    hooks = round(asyncio.run(hooks_ns()), 1)
    print(
        json.dumps(
            {
                "us_per_turn_median": result,
                "hooks_ns_per_stateless_turn": hooks,
                "turns": args.turns,
                "rounds": args.rounds,
            }
        )
    )
