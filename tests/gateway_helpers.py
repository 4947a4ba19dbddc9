"""What the gateway's end-to-end suites share: the default catalog's model names, the personas
they pin, fast retry settings, a bridge built with them, and the catalog's prices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

SMALL = "llama-3.1-8b-instant"
LARGE = "llama-3.3-70b-versatile"
LARGEST = "openai/gpt-oss-120b"
SMITH = {"name": "Brom", "description": "A blacksmith."}
PINNED = {**SMITH, "model": SMALL, "fallbacks": [LARGE]}
ALONE = {**SMITH, "model": SMALL, "fallbacks": []}

#: fast retries for every test: tiny back-off, short cool-downs
FAST: dict[str, Any] = {
    "retry__base_delay_ms": 5,
    "retry__max_delay_ms": 20,
    "upstream__first_token_timeout_s": 2.0,
}

#: usage large enough that one turn spends a small budget
BIG_USAGE = {"prompt_tokens": 100_000, "completion_tokens": 1000, "total_tokens": 101_000}


async def bridge_with(fake: FakeUpstream, tmp_path: Path, **overrides: Any) -> Bridge:
    """A bridge with fast retries plus ``overrides``."""
    return await start_bridge(fake, tmp_path, **{**FAST, **overrides})


def models_called(fake: FakeUpstream) -> list[str | None]:
    """The model of every chat request the fake received, in order."""
    return [r.model for r in fake.requests if r.path.endswith("/chat/completions")]


def price(model: str, usage: dict[str, Any]) -> float:
    """The cost of ``usage`` at the default catalog's prices."""
    prices = {SMALL: (0.05, 0.08), LARGE: (0.59, 0.79), LARGEST: (0.15, 0.60)}
    pin, pout = prices[model]
    return (usage["prompt_tokens"] * pin + usage["completion_tokens"] * pout) / 1e6
