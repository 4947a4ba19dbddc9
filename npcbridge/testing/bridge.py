"""Start a real npcbridge server inside the current event loop, wired to a fake upstream.

Used by the test suites (also the plugins' own suites) and the benchmarks::

    async with await start_bridge(fake, tmp_path, server__max_in_flight=2) as bridge:
        async with await bridge.client() as client:
            ...

The block stops the server (and closes its app) however it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..app import App
from ..client import Client
from ..config import Config
from ..server import Server, serve
from .fake_upstream import FakeUpstream
from .stack import stack_config


@dataclass
class Bridge:
    """A running npcbridge server wired to a fake upstream."""

    app: App
    server: Server
    fake: FakeUpstream

    @property
    def url(self) -> str:
        """The server's WebSocket URL."""
        return self.server.url

    async def client(self, **options: Any) -> Client:
        """A connected client."""
        return await Client.connect(self.url, **options)

    async def close(self) -> None:
        """Stop the server (its app included)."""
        await self.server.close()

    async def __aenter__(self) -> Bridge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_bridge(
    fake: FakeUpstream,
    tmp_path: Path,
    *,
    plugins: tuple[str, ...] = (),
    entry_points: bool = False,
    port: int = 0,
    **overrides: Any,
) -> Bridge:
    """Start a server against ``fake`` on ``port`` (0: any free one). ``overrides`` use
    ``section__field=value`` keys. The bridge is an async context manager that stops it."""
    config = bridge_config(fake.base_url, str(tmp_path / "bridge.db"), **overrides)
    app = App(config, plugins, entry_points=entry_points)
    try:
        server = await serve(app, port=port)
    except BaseException:
        await app.close()  # started, or half-started, before the port could be bound
        raise
    return Bridge(app, server, fake)


def bridge_config(upstream_url: str, store_url: str, **overrides: Any) -> Config:
    """The test stack's configuration (:func:`~.stack.stack_config`) with ``overrides``:
    ``section__field=value`` sets one field, ``section=value`` a whole section (``models=[]``,
    ``extra={...}``). The API key is ``test-key`` unless ``upstream__api_key`` says otherwise."""
    config = stack_config(upstream_url, store_url)
    data = config.model_dump()
    for dotted, value in overrides.items():
        section, _, key = dotted.partition("__")
        if key:
            data[section][key] = value
        else:
            data[section] = value
    if data["server"]["token"] is not None and not isinstance(data["server"]["token"], str):
        data["server"]["token"] = config.server.token.get_secret_value()  # type: ignore[union-attr]
    data["upstream"]["api_key"] = overrides.get("upstream__api_key", "test-key")
    return Config.model_validate(data)
