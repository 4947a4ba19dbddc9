"""Send several prompts at once and collect every reply.

Requests run concurrently on one connection; the server's rate limiter keeps them within the
upstream's limits, and each prompt gets its own result or error.

    python examples/python/batch_prompts.py --url ws://127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
import asyncio

from npcbridge.client import Client, NpcBridgeError

PROMPTS = [
    "What do you sell?",
    "Any news from the mine?",
    "Who is the elf in the tower?",
    "Where can I sleep tonight?",
]


async def main(url: str) -> None:
    """Ask every prompt concurrently; print the replies in order."""
    async with await Client.connect(url) as client:
        await client.define_npc(
            "innkeeper", {"name": "Marta", "description": "A cheerful innkeeper."}
        )

        async def ask(prompt: str) -> str:
            try:
                return await (await client.say("innkeeper", "player-1", prompt)).text()
            except NpcBridgeError as exc:
                return f"[error {exc.code}: {exc.message}]"

        answers = await asyncio.gather(*(ask(p) for p in PROMPTS))
        for prompt, answer in zip(PROMPTS, answers, strict=True):
            print(f"Q: {prompt}\nA: {answer}\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765/")
    asyncio.run(main(parser.parse_args().url))
