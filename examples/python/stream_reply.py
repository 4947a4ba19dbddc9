"""Stream one NPC reply token by token, through the bridge.

python examples/python/stream_reply.py --url ws://127.0.0.1:8765/ "Tell me about the mine."
"""

from __future__ import annotations

import argparse
import asyncio

from npcbridge.client import Client


async def main(url: str, text: str) -> None:
    """Define a blacksmith and print his reply as it streams."""
    async with await Client.connect(url) as client:
        await client.define_npc(
            "blacksmith",
            {"name": "Brom", "description": "The village blacksmith, rough but kind."},
        )
        reply = await client.say("blacksmith", "player-1", text, urgency="realtime")
        async for delta in reply:
            print(delta, end="", flush=True)
        end = reply.end or {}
        print(f"\n[{end.get('model')}: ttft {end.get('timing', {}).get('ttft_ms')} ms]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765/")
    parser.add_argument("text", nargs="?", default="Can you fix my sword?")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.text))
