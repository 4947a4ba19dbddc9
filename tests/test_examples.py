"""The examples run against a real server: the Python scripts and the plugin template."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from npcbridge.testing.bridge import Bridge

ROOT = Path(__file__).resolve().parent.parent


async def run_example(script: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "python" / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_stream_reply(bridge: Bridge) -> None:
    out = await run_example("stream_reply.py", "--url", bridge.url, "[[reply:Aye, lad.]]")
    assert out.startswith("Aye, lad.") and "llama-3.1-8b-instant" in out


async def test_batch_prompts(bridge: Bridge) -> None:
    out = await run_example("batch_prompts.py", "--url", bridge.url)
    assert out.count("Q: ") == 4 and out.count("A: Well met.") == 4
    assert len(bridge.fake.requests) == 4


async def test_persona_npc_remembers_the_conversation(bridge: Bridge) -> None:
    out = await run_example("persona_npc.py", "--url", bridge.url)
    assert out.count("mage> ") == 3
    last = bridge.fake.requests[-1].body["messages"]
    assert any("Tom the farmer" in m["content"] for m in last[1:-1])
    assert "Aelindra" in last[0]["content"]


async def test_relationship_bar_moves(bridge: Bridge) -> None:
    out = await run_example("relationship.py", "--url", bridge.url)
    bars = [line for line in out.splitlines() if line.startswith("[")]
    # after a talk (no change), a gift (rules: +10 x 6/5) and a theft (the game's -35)
    assert [b.rsplit(" ", 1)[1] for b in bars] == ["+0", "+12", "-23"], out
    assert out.count("guard> ") == 3


async def test_plugin_template(bridge: Bridge) -> None:
    template = ROOT / "examples" / "plugin-template"
    env = {**os.environ, "PYTHONPATH": str(template)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(template / "tests"),
        env=env,
        cwd=template,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode()
    assert b"1 passed" in out
