"""An NPC with a persona and a short conversation.

The haughty elf mage remembers what the player said earlier in the conversation.

    python examples/python/persona_npc.py --url ws://127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
import asyncio

from npcbridge.client import Client

MAGE = {
    "name": "Aelindra",
    "description": "A haughty elf mage who has studied the arcane for four centuries.",
    "personality": "proud, precise, impatient with humans",
    "speech_style": "formal, condescending, never uses contractions",
    "knowledge": ["The tower's library holds the only copy of the Sunfire Codex."],
    "examples": ["You may speak, human. Briefly."],
}

LINES = ["Greetings, I am Tom the farmer.", "Can you teach me magic?", "What was my name again?"]


async def main(url: str) -> None:
    """Define the mage and hold a three-line conversation."""
    async with await Client.connect(url) as client:
        await client.define_npc("mage", MAGE)
        for line in LINES:
            print(f"player> {line}")
            reply = await client.say("mage", "tom", line, context={"location": "mage tower"})
            print(f"mage> {await reply.text()}")
            if reply.emotes:
                print(f"      ({'; '.join(reply.emotes)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765/")
    asyncio.run(main(parser.parse_args().url))
