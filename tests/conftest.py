"""Shared pytest fixtures for npcbridge's test suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """A running :class:`FakeUpstream` on a free loopback port (fast: no TTFT, unpaced)."""
    async with FakeUpstream() as fake:
        yield fake


@pytest.fixture
async def bridge(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Bridge]:
    """An npcbridge server on a free port with the fake upstream behind it."""
    b = await start_bridge(fake_upstream, tmp_path)
    try:
        yield b
    finally:
        await b.close()
