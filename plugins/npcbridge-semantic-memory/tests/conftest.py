"""Fixtures for the semantic-memory plugin's suite (runs in its own CI step)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from npcbridge.testing.fake_upstream import FakeUpstream

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """The shared fake OpenAI-compatible upstream."""
    async with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def semantic():  # type: ignore[no-untyped-def]
    """One loaded plugin instance for the session (loading takes seconds)."""
    from npcbridge_semantic_memory import SemanticMemory

    plugin = SemanticMemory()
    plugin.model()
    return plugin
