"""An NPC whose feelings last (docs/state.md): a trust bar that moves with what happens.

The guard starts neutral. The player talks, gives a gift (a world event the guard reacts to),
and is seen stealing; after each step the guard's trust in the player is drawn as a bar, from
what the client knows of the state (``reply.end.state`` and the ``state`` frames).

    python examples/python/relationship.py --url ws://127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
import asyncio

from npcbridge.client import Client

GUARD = {
    "name": "Hilde",
    "description": "A town guard at the market gate, stern but fair.",
    "state": {"trust": 0, "volatility": 1.0},
}
PLAYER = "tom"


def bar(trust: float, width: int = 40) -> str:
    """Trust -100..100 as ``[#####.....]`` with the number."""
    filled = round((trust + 100) / 200 * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] trust {trust:+.0f}"


async def main(url: str) -> None:
    """Talk, give a gift, get caught stealing; draw the trust bar after each."""
    async with await Client.connect(url) as client:
        await client.define_npc("guard", GUARD)
        await client.state_set("guard", PLAYER, trust=0, affection=0)

        def trust() -> float:
            return float(client.known[("guard", PLAYER)]["relationship"]["trust"])

        reply = await client.say("guard", PLAYER, "Good morning! Quiet day at the gate?")
        print(f"guard> {await reply.text()}")
        print(bar(trust()))
        for text, effects in [
            ("The player gave Hilde a warm loaf of bread as a gift.", None),
            ("The player stole an apple from the fruit stall.", {"trust": -35, "mood": "angry"}),
        ]:
            print(f"* {text}")
            reactions = await client.world_event(
                text, npc="guard", player=PLAYER, react=True, importance=6,
                **({"effects": effects} if effects else {}),
            )  # fmt: skip
            async for reaction in reactions:
                print(f"guard> {await reaction.text()}")
            print(bar(trust()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765/")
    asyncio.run(main(parser.parse_args().url))
