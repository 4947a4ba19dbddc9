"""Shared pytest fixtures for npcbridge's test suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from npcbridge.testing.fake_upstream import FakeUpstream


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """A running :class:`FakeUpstream` on a free loopback port (fast: no TTFT, unpaced)."""
    async with FakeUpstream() as fake:
        yield fake
