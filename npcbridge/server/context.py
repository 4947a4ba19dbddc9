"""What the server's connections and HTTP answers use, handed over by the composition root.

The server never sees the whole application: :func:`~npcbridge.server.serve.serve` runs an
:class:`Application` (its start-up and shutdown) and gives each connection the
:class:`ServerContext`: the server settings, what plugins registered, the pipeline that runs
turns and the plugin API (persona lookup, the hooks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..gateway.catalog import Catalog
    from ..pipeline.run import Pipeline
    from ..plugin.api import PluginAPI
    from ..plugin.registry import Registry


@dataclass
class ServerContext:
    """The parts of one server that its connections and HTTP routes use."""

    settings: ServerConfig
    #: ``welcome.server`` and the HTTP ``Server`` header (``npcbridge/<version>``)
    server_name: str
    #: True when NPCs answer with canned replies (shown by ``/healthz`` to trusted peers)
    offline: bool
    catalog: Catalog
    #: message handlers, HTTP routes and welcome features the plugins registered
    registry: Registry
    pipeline: Pipeline
    api: PluginAPI
    #: the open connections (:class:`~npcbridge.server.session.Session`)
    sessions: set[Any] = field(default_factory=set)


class Application(Protocol):
    """What :func:`~npcbridge.server.serve.serve` runs: built by the composition root."""

    @property
    def context(self) -> ServerContext:
        """The parts connections use."""

    async def start(self) -> None:
        """Register providers, open the store, run the start-up and registration hooks."""

    async def close(self) -> None:
        """Run the shutdown hooks; close providers and the store."""
