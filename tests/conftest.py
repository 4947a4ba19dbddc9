"""Shared pytest fixtures for npcbridge's test suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gateway_helpers import FAST

from npcbridge.app import App
from npcbridge.stores import Store, open_store
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
async def gw(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Bridge]:
    """A bridge with fast retry settings (``gateway_helpers.FAST``)."""
    async with await start_bridge(fake_upstream, tmp_path, **FAST) as b:
        yield b


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store backend in turn (Redis: the session's server, emptied for each test)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
    else:
        url = str(tmp_path / "store.db")
    s = await open_store(url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=["sqlite", "redis"])
async def store_bridge(
    request: pytest.FixtureRequest, fake_upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[Bridge]:
    """A server on each store backend in turn (Redis: the session's server; a module using it
    imports the ``redis_url`` fixture)."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    async with await start_bridge(
        fake_upstream, tmp_path, **({"store__url": url} if url else {})
    ) as b:
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
