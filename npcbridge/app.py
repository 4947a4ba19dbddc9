"""The server application: configuration, plugins, catalog, providers and the pipeline.

One :class:`App` per server; nothing here is global, so tests can run several side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from . import SERVER_NAME
from .config import Config
from .gateway import Gateway, upstream_protocol_error
from .models import OFFLINE_MODEL, Catalog, ModelEntry
from .pipeline import Pipeline
from .plugins import PluginManager, make_plugin_manager
from .protocol.errors import ErrorCode, ProtocolError
from .protocol.messages import Persona
from .providers.base import Provider, UpstreamError
from .registry import MessageHandler, Registry, Route
from .stores import Store, open_store

log = logging.getLogger("npcbridge")


class StartupError(Exception):
    """The server cannot start as configured (one readable line)."""


class App:
    """Everything one server needs, built from a :class:`Config`."""

    def __init__(
        self, config: Config, plugins: Iterable[str] = (), *, entry_points: bool = True
    ) -> None:
        self.config = config
        self.offline = config.upstream.use_offline()
        self.catalog = Catalog([OFFLINE_MODEL] if self.offline else config.models)
        self.default_model = "offline" if self.offline else config.upstream.default_model
        #: what plugins registered: handlers, routes, features, settings sections
        self.registry = Registry()
        self.plugins: PluginManager = make_plugin_manager(
            self,
            configured=config.plugins,
            extra=plugins,
            disabled=config.disable_plugins,
            entry_points=entry_points,
        )
        self.plugins.call_sync(
            "npcbridge_register_settings",
            register=lambda name, model: self.registry.add_settings(name, model, config.extra),
        )
        self.providers: dict[str, Provider] = {}
        self.npcs: dict[str, Persona] = dict(config.npcs)
        self.pipeline = Pipeline(self)
        self.gateway = Gateway(self)
        self.store: Store | None = None
        self.started = False
        self.sessions: set[Any] = set()

    @property
    def features(self) -> tuple[str, ...]:
        """``welcome.features``: the core's, then what ``npcbridge_register_features`` added."""
        return self.registry.features

    @property
    def handlers(self) -> Mapping[str, MessageHandler]:
        """Message types served by ``npcbridge_register_handlers`` (read-only)."""
        return self.registry.handlers

    @property
    def http_routes(self) -> Mapping[str, Route]:
        """HTTP GET routes added by ``npcbridge_register_routes`` (read-only)."""
        return self.registry.routes

    def plugin_settings(self, name: str) -> BaseModel:
        """The validated ``[extra.<name>]`` section a plugin declared with
        ``npcbridge_register_settings`` (KeyError when none did)."""
        return self.registry.settings(name)

    @property
    def server_name(self) -> str:
        """``npcbridge/<version>`` as announced in ``welcome``."""
        return SERVER_NAME

    async def start(self) -> None:
        """Register providers and their models, open the store (``config.store.url``), run the
        startup hooks, then collect handlers, routes and features from the plugins."""
        await self.plugins.call(
            "npcbridge_register_providers", register=self._register_provider, app=self
        )
        self._check_providers()
        if self.offline:
            self.registry.add_feature("offline")
            log.warning(
                "OFFLINE MODE: no GROQ_API_KEY is set, NPCs answer with canned in-character "
                "replies from the 'offline' provider, not from an LLM"
            )
        self.store = await open_store(self.config.store.url)
        await self.plugins.call("npcbridge_startup", app=self)
        registry = self.registry
        await self.plugins.call(
            "npcbridge_register_handlers", register=registry.add_handler, app=self
        )
        await self.plugins.call("npcbridge_register_routes", register=registry.add_route, app=self)
        await self.plugins.call(
            "npcbridge_register_features", register=registry.add_feature, app=self
        )
        self.started = True

    async def close(self) -> None:
        """Run the shutdown hooks, close providers and the store."""
        if not self.started:
            await self._close_store()
            return
        self.started = False
        try:
            await self.plugins.call("npcbridge_shutdown", app=self)
        finally:
            for provider in self.providers.values():
                await provider.aclose()
            await self._close_store()

    async def _close_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            await store.close()

    def _register_provider(
        self, name: str, provider: Provider, models: Iterable[ModelEntry] = ()
    ) -> None:
        """The ``register`` of ``npcbridge_register_providers``: the provider, and its models
        added to the catalog (never chosen by tier unless the entry sets ``tier``)."""
        if name in self.providers:
            raise StartupError(f"provider {name!r} is registered twice")
        self.providers[name] = provider
        for entry in models:
            update: dict[str, Any] = {"provider": name}
            if "tier" not in entry.model_fields_set:
                update["tier"] = None
            entry = entry.model_copy(update=update)
            clash = next(
                (n for n in (entry.id, *entry.aliases) if self.catalog.get(n) is not None), None
            )
            if clash is not None:
                raise StartupError(
                    f"provider {name!r} registers model {clash!r}, which the catalog already has"
                )
            self.catalog.add(entry)

    def _check_providers(self) -> None:
        """Every catalog model must name a registered provider (one line otherwise)."""
        for entry in self.catalog.entries:
            if entry.provider not in self.providers:
                raise StartupError(
                    f"model {entry.id!r} names provider {entry.provider!r}, which no plugin "
                    f"registered (registered: {', '.join(sorted(self.providers)) or 'none'})"
                )

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
