"""Shared pytest fixtures for npcbridge's test suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from npcbridge.app import App
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.scripted import ScriptedProvider, running_scripted_app


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """A running :class:`FakeUpstream` on a free loopback port (fast: no TTFT, unpaced)."""
    async with FakeUpstream() as fake:
        yield fake


@pytest.fixture
async def bridge(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Bridge]:
    """An npcbridge server on a free port with the fake upstream behind it."""
    async with await start_bridge(fake_upstream, tmp_path) as b:
        yield b


@pytest.fixture
def scripted() -> ScriptedProvider:
    """An in-process provider answering from a script (``scripted.script(...)``)."""
    return ScriptedProvider()


@pytest.fixture
async def scripted_app(scripted: ScriptedProvider) -> AsyncIterator[App]:
    """A started App (no server, in-memory store) whose upstream is the ``scripted`` provider."""
    async with running_scripted_app(scripted) as app:
        yield app
