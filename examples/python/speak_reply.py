"""Hear an NPC: ask for a voiced reply and write its audio to a WAV file as the frames arrive.

python examples/python/speak_reply.py --url ws://127.0.0.1:8765/ --out reply.wav "Hello!"

Each ``reply.audio`` frame is 16-bit PCM with a mouth-openness envelope (one value per 20 ms):
this prints one bar per frame, the way an engine would move the NPC's jaw.
"""

from __future__ import annotations

import argparse
import asyncio
import wave

from npcbridge.client import Client


async def main(url: str, text: str, out: str) -> None:
    """Define a blacksmith with a voice, say ``text``, write what he says to ``out``."""
    async with await Client.connect(url) as client:
        if "voice" not in client.welcome["features"]:
            raise SystemExit("this server has no voice (no API key and no espeak-ng)")
        persona = {"name": "Brom", "description": "A gruff blacksmith.", "voice": {"name": "troy"}}
        await client.define_npc("blacksmith", persona)
        reply = await client.say_audio("blacksmith", "player-1", text, urgency="realtime")
        with wave.open(out, "wb") as wav:
            async for frame in reply.audio():
                if frame.seq == 0:
                    wav.setnchannels(frame.channels)
                    wav.setsampwidth(2)
                    wav.setframerate(frame.sample_rate)
                wav.writeframes(frame.pcm)
                jaw = max(frame.openness(), default=0.0)
                print(f"{frame.duration_ms:5d} ms {'#' * round(jaw * 20):20s} {frame.text}")
        voice = (reply.end or {}).get("voice", {})
        print(f"[{voice.get('audio_ms')} ms of audio, first after {voice.get('ttfa_ms')} ms]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765/")
    parser.add_argument("--out", default="reply.wav")
    parser.add_argument("text", nargs="?", default="Can you fix my sword?")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.text, args.out))
