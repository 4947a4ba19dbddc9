"""The semantic-memory plugin: offline loading, embedding relevance, recall through a server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import npcbridge_semantic_memory as sm

from npcbridge.memory.ranking import lexical_relevance, rank
from npcbridge.stores import MemoryRecord
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

SMITH = {"name": "Brom", "description": "A blacksmith, rough but kind."}
QUERY = "Can you forge me a new blade?"
TEXTS = [
    "The player's mother grows turnips by the river.",
    "The player wants a sharp sword for the tournament.",
    "The player is afraid of the dark.",
]


def test_entry_point_registers_the_plugin_instance() -> None:
    found = {ep.name: ep for ep in entry_points(group="npcbridge")}
    assert found["semantic_memory"].value == "npcbridge_semantic_memory:plugin"
    assert found["semantic_memory"].load() is sm.plugin


def test_weights_are_bundled_in_the_package() -> None:
    path = Path(sm.model_path())
    assert (path / "model.safetensors").stat().st_size > 80_000_000
    assert (path / "modules.json").exists() and (path / "tokenizer.json").exists()


def test_model_loads_without_any_network() -> None:
    """A fresh interpreter with every socket connection refused still loads and embeds."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network is off in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from npcbridge_semantic_memory import SemanticMemory\n"
        "p = SemanticMemory()\n"
        "print(len(p.embed(['hello'])[0]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "384"
    _ = socket


def test_embeddings_rank_by_meaning_where_words_do_not_overlap(semantic: Any) -> None:
    scores = semantic.similarities(QUERY, TEXTS)
    assert max(range(3), key=lambda i: scores[i]) == 1  # blade ~ sword
    assert lexical_relevance(QUERY, TEXTS)[1] == 0.0  # no shared word: lexical cannot see it
    assert all(-1.0 <= s <= 1.0 for s in scores)


def test_ranking_with_embeddings(semantic: Any) -> None:
    now = time.time()
    memories = [
        MemoryRecord("smith", "p1", "fact", text, 5, now, now, id=i + 1)
        for i, text in enumerate(TEXTS)
    ]
    scored = rank(memories, now, semantic.similarities(QUERY, TEXTS))
    assert scored[0].memory.id == 2 and scored[0].relevance == 1.0


class _App:
    """What the start-up hook reads of the plugin API."""

    def __init__(self, **options: Any) -> None:
        self.config = SimpleNamespace(extra={"semantic_memory": options} if options else {})


async def test_hook_answers_none_until_loaded_then_scores() -> None:
    fresh = sm.SemanticMemory()
    assert await fresh.npcbridge_memory_relevance(QUERY, TEXTS, api=None) is None  # type: ignore[arg-type]
    assert fresh._loader is None  # ranking never starts the load (start-up does)
    await fresh.npcbridge_startup(api=_App(preload=False))  # type: ignore[arg-type]
    assert fresh._loader is not None
    assert await fresh.npcbridge_memory_relevance(QUERY, TEXTS, api=None) is None  # type: ignore[arg-type]
    fresh._loader.join(300)
    scores = await fresh.npcbridge_memory_relevance(QUERY, TEXTS, api=None)  # type: ignore[arg-type]
    assert scores is not None and len(scores) == 3


_TICKER = """
import asyncio, json, time
from types import SimpleNamespace
from npcbridge_semantic_memory import SemanticMemory

QUERY = {query!r}
TEXTS = [f"memory {{i}}: " + t for i in range(60) for t in {texts!r}]

async def main():
    plugin = SemanticMemory()
    app = SimpleNamespace(config=SimpleNamespace(extra={{}}))
    await plugin.npcbridge_startup(api=app)  # the default configuration
    gaps, stop = [], asyncio.Event()

    async def tick():
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    scored = 0
    for n in range(10):
        scores = await plugin.npcbridge_memory_relevance(f"{{QUERY}} ({{n}})", TEXTS, app)
        scored += scores is not None
    stop.set()
    await ticker
    print(json.dumps({{"scored": scored, "max_gap_s": max(gaps), "ticks": len(gaps)}}))

asyncio.run(main())
"""


def test_ranking_never_stalls_the_event_loop() -> None:
    """A fresh interpreter (PyTorch not imported yet): with the default configuration start-up
    loads the model, so ranking 180 new memories ten times keeps a 5 ms ticker ticking (an
    import of PyTorch beside it, as the first ranking used to start, stalls it ~0.2 s)."""
    code = _TICKER.format(query=QUERY, texts=TEXTS)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["scored"] == 10  # every ranking was semantic, none fell back to lexical
    assert result["max_gap_s"] < 0.15, result  # the import stall is 0.2-0.4 s


async def test_server_recalls_the_semantically_relevant_fact_first(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream,
        tmp_path,
        plugins=("npcbridge_semantic_memory:plugin",),
        extra__semantic_memory={"preload": True},
    ) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("smith", SMITH)
            for text in TEXTS:
                await client.request(
                    {"type": "memory.add", "npc": "smith", "player": "p1", "text": text}
                )
            answer = await client.request(
                {"type": "memory.query", "npc": "smith", "player": "p1", "text": QUERY}
            )
            assert answer["items"][0]["text"] == TEXTS[1]
            reply = await client.say("smith", "p1", QUERY)
            await reply.text()
        memo = fake_upstream.requests[-1].messages[1]["content"]
        lines = [line for line in memo.splitlines() if line.startswith("- ")]
        assert lines[0] == f"- {TEXTS[1]}"


def test_importing_the_plugin_switches_the_hub_offline() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    code = (
        "import os, npcbridge_semantic_memory\n"
        "print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["1", "1"], out.stderr[-2000:]
