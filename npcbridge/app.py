"""The server application: configuration, plugins, catalog, providers and the pipeline.

One :class:`App` per server; nothing here is global, so tests can run several side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pluggy

from . import SERVER_NAME
from .config import Config
from .gateway import Gateway, upstream_protocol_error
from .models import OFFLINE_MODEL, Catalog, ModelEntry
from .pipeline import Pipeline
from .plugins import call_all, make_plugin_manager
from .protocol.errors import ErrorCode, ProtocolError
from .protocol.messages import Persona
from .providers.base import Provider, UpstreamError
from .stores import Store, open_store

log = logging.getLogger("npcbridge")


class App:
    """Everything one server needs, built from a :class:`Config`."""

    def __init__(
        self, config: Config, plugins: Iterable[str] = (), *, entry_points: bool = True
    ) -> None:
        self.config = config
        self.offline = config.upstream.use_offline()
        self.catalog = Catalog([OFFLINE_MODEL] if self.offline else config.models)
        self.default_model = "offline" if self.offline else config.upstream.default_model
        self.plugins: pluggy.PluginManager = make_plugin_manager(
            self,
            extra=[*config.plugins, *plugins],
            disabled=config.disable_plugins,
            entry_points=entry_points,
        )
        self.providers: dict[str, Provider] = {}
        self.npcs: dict[str, Persona] = dict(config.npcs)
        self.pipeline = Pipeline(self)
        self.gateway = Gateway(self)
        self.features: list[str] = ["stream", "cancel", "emotes", "actions"]
        self.store: Store | None = None
        self.started = False
        #: request handlers for message types beyond the core (memory.*, quest.generate, ...)
        self.handlers: dict[str, Any] = {}
        #: extra HTTP GET routes on the WebSocket port: path -> () -> (status, content type, body)
        self.http_routes: dict[str, Any] = {}
        self.sessions: set[Any] = set()

    @property
    def server_name(self) -> str:
        """``npcbridge/<version>`` as announced in ``welcome``."""
        return SERVER_NAME

    async def start(self) -> None:
        """Register providers, open the store (``config.store.url``), run the startup hooks."""
        self.plugins.hook.npcbridge_register_providers(register=self._register_provider, app=self)
        if self.offline:
            self.features.append("offline")
            log.warning(
                "OFFLINE MODE: no GROQ_API_KEY is set, NPCs answer with canned in-character "
                "replies from the 'offline' provider, not from an LLM"
            )
        self.store = await open_store(self.config.store.url)
        if "memory" not in self.features:
            self.features.append("memory")
        await call_all(self.plugins, "npcbridge_startup", app=self)
        self.started = True

    async def close(self) -> None:
        """Run the shutdown hooks, close providers and the store."""
        if not self.started:
            await self._close_store()
            return
        self.started = False
        try:
            await call_all(self.plugins, "npcbridge_shutdown", app=self)
        finally:
            for provider in self.providers.values():
                await provider.aclose()
            await self._close_store()

    async def _close_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            await store.close()

    def _register_provider(self, name: str, provider: Provider) -> None:
        self.providers[name] = provider

    def model_entry(self, name: str) -> ModelEntry:
        """The catalog entry for a model id or alias; unknown names pass through as-is (for
        servers such as Ollama whose models are not in the catalog) at zero cost."""
        entry = self.catalog.get(name)
        if entry is not None:
            return entry
        if self.offline:
            return OFFLINE_MODEL
        return ModelEntry(id=name)

    def provider_for(self, model: ModelEntry) -> Provider:
        """The provider that serves ``model``."""
        provider = self.providers.get(model.provider)
        if provider is None:
            raise ProtocolError(
                ErrorCode.INTERNAL, f"no provider {model.provider!r} for model {model.id!r}"
            )
        return provider

    def upstream_error(self, exc: UpstreamError, request_id: str | int | None) -> ProtocolError:
        """Translate an upstream failure for the client (never leaks the API key)."""
        return upstream_protocol_error(exc, request_id)

    def persona(self, npc: str, session_npcs: dict[str, Persona]) -> Persona:
        """The persona of ``npc``: defined on the connection, else in config."""
        persona = session_npcs.get(npc) or self.npcs.get(npc)
        if persona is None:
            raise ProtocolError(ErrorCode.UNKNOWN_NPC, "field 'npc': unknown npc; define it first")
        return persona
