"""The composition root: builds each part of one server and hands it only what it needs.

Nothing but the roots (this module, the CLI, the test stacks in :mod:`npcbridge.testing`)
imports it. The parts, in the order they are built:

* the model :class:`~npcbridge.gateway.catalog.Catalog` and the
  :class:`~npcbridge.gateway.metrics.Metrics`;
* the :class:`~npcbridge.gateway.core.Gateway` (config sections, catalog, metrics, the providers the
  plugins register, the store once it is open);
* the hook caller (:class:`~npcbridge.plugin.manager.PluginManager`) and the
  :class:`~npcbridge.pipeline.run.Pipeline` (hooks, gateway, catalog, default model);
* the :class:`~npcbridge.plugin.api.PluginAPI` plugins type against (with
  :class:`~npcbridge.pipeline.runner.TurnRunner` as its ``turns``), then the plugins themselves;
* the :class:`~npcbridge.server.context.ServerContext` the server's connections use;
* at start-up, the store and its one :class:`~npcbridge.stores.writes.WriteQueue` (memory
  writes and budget settlements wait in it while the store cannot be reached).

One :class:`App` per server; nothing here is global, so tests can run several side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from . import SERVER_NAME, workers
from .config import Config
from .gateway.catalog import OFFLINE_MODEL, AudioModelEntry, Catalog, ModelEntry
from .gateway.core import Gateway
from .gateway.metrics import Metrics
from .pipeline.run import Pipeline
from .pipeline.runner import TurnRunner
from .plugin.api import PluginAPI
from .plugin.manager import PluginManager, load_plugins
from .plugin.registry import MessageHandler, RegisteredRoute, Registry
from .protocol.messages import Persona
from .providers.audio import AudioProvider
from .providers.base import Provider
from .server.context import ServerContext
from .stores import Store, open_store
from .stores.writes import WriteQueue

log = logging.getLogger("npcbridge")


class StartupError(Exception):
    """The server cannot start as configured (one readable line)."""


class App:
    """One server, built from a :class:`Config` (see the module docstring)."""

    def __init__(
        self, config: Config, plugins: Iterable[str] = (), *, entry_points: bool = True
    ) -> None:
        self.config = config
        self.offline = config.upstream.use_offline()
        self.catalog = (
            Catalog([OFFLINE_MODEL], fallback=OFFLINE_MODEL, audio=config.audio_models)
            if self.offline
            else Catalog(config.models, audio=config.audio_models)
        )
        self.default_model = "offline" if self.offline else config.upstream.default_model
        #: what plugins registered: handlers, routes, features, settings sections
        self.registry = Registry()
        self.providers: dict[str, Provider] = {}
        #: speech providers (``npcbridge_register_audio_providers``)
        self.audio_providers: dict[str, AudioProvider] = {}
        self.npcs: dict[str, Persona] = dict(config.npcs)
        self.store: Store | None = None
        #: the store's write queue (None while no store is open)
        self.writes: WriteQueue | None = None
        self.gateway = Gateway(
            config,
            self.catalog,
            Metrics(known=self.catalog.knows),
            self.providers,
            lambda: self.store,
            writes=lambda: self.writes,
            audio_providers=self.audio_providers,
        )
        self.plugins = PluginManager()
        self.pipeline = Pipeline(self.plugins, self.gateway, self.catalog, self.default_model)
        self.api = PluginAPI(
            config=config,
            catalog=self.catalog,
            settings=self.registry.settings,
            metrics=self.gateway.metrics,
            npcs=self.npcs,
            call=self.plugins.call,
            turns=TurnRunner(self.pipeline),
            store=lambda: self.store,
            writes=lambda: self.writes,
            offline=self.offline,
            default_model=self.default_model,
        )
        load_plugins(
            self.plugins,
            self.api,
            configured=config.plugins,
            extra=plugins,
            disabled=config.disable_plugins,
            entry_points=entry_points,
        )
        self.plugins.call_sync(
            "npcbridge_register_settings",
            register=lambda name, model: self.registry.add_settings(name, model, config.extra),
        )
        self.context = ServerContext(
            settings=config.server,
            server_name=SERVER_NAME,
            offline=self.offline,
            catalog=self.catalog,
            registry=self.registry,
            pipeline=self.pipeline,
            api=self.api,
        )
        self.started = False

    @property
    def sessions(self) -> set[Any]:
        """The open connections."""
        return self.context.sessions

    @property
    def features(self) -> tuple[str, ...]:
        """``welcome.features``: the core's, then what ``npcbridge_register_features`` added."""
        return self.registry.features

    @property
    def handlers(self) -> Mapping[str, MessageHandler]:
        """Message types served by ``npcbridge_register_handlers`` (read-only)."""
        return self.registry.handlers

    @property
    def http_routes(self) -> Mapping[str, RegisteredRoute]:
        """HTTP routes added by ``npcbridge_register_routes``, by path (read-only)."""
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
            "npcbridge_register_providers", register=self._register_provider, api=self.api
        )
        self._check_providers()
        await self.plugins.call(
            "npcbridge_register_audio_providers",
            register=self._register_audio_provider,
            api=self.api,
        )
        if self.offline:
            self.registry.add_feature("offline")
            log.warning(
                "OFFLINE MODE: no GROQ_API_KEY is set, NPCs answer with canned in-character "
                "replies from the 'offline' provider, not from an LLM"
            )
        self.store = await open_store(self.config.store.url)
        if self.config.server.workers > 1:
            # the workers of one port share the file: budgets, rate-limit windows and summary
            # leases then go through the store for all of them (npcbridge.workers)
            self.store.shared = True
        metrics = self.gateway.metrics
        metrics.join_workers(workers.shared_folder(), workers.worker_index())
        self.writes = WriteQueue(self.store, on_drop=metrics.memory_writes_dropped.inc)
        metrics.memory_writes_queued.set_function(
            lambda: self.writes.pending if self.writes is not None else 0
        )
        await self.plugins.call("npcbridge_startup", api=self.api)
        registry = self.registry
        await self.plugins.call(
            "npcbridge_register_handlers", register=registry.add_handler, api=self.api
        )
        await self.plugins.call(
            "npcbridge_register_routes", register=registry.add_route, api=self.api
        )
        await self.plugins.call(
            "npcbridge_register_features", register=registry.add_feature, api=self.api
        )
        self.started = True

    async def close(self) -> None:
        """Run the shutdown hooks, close providers and the store."""
        if not self.started:
            await self._close_store()
            return
        self.started = False
        try:
            await self.plugins.call("npcbridge_shutdown", api=self.api)
        finally:
            for provider in self.providers.values():
                await provider.aclose()
            for speaker in self.audio_providers.values():
                await speaker.aclose()
            await self.gateway.metrics.leave_workers()
            await self._close_store()

    async def _close_store(self) -> None:
        # the shutdown hooks gave queued writes their time (memory's shutdown_wait_s); what is
        # still queued now is counted as dropped and logged
        writes, self.writes = self.writes, None
        if writes is not None:
            await writes.close(0)
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

    def _register_audio_provider(
        self, name: str, provider: AudioProvider, models: Iterable[AudioModelEntry] = ()
    ) -> None:
        """The ``register`` of ``npcbridge_register_audio_providers``: the speech provider, and
        its speech models added to the catalog."""
        if name in self.audio_providers:
            raise StartupError(f"speech provider {name!r} is registered twice")
        self.audio_providers[name] = provider
        for entry in models:
            if entry.id in self.catalog.audio:
                raise StartupError(
                    f"speech provider {name!r} registers model {entry.id!r}, which the catalog "
                    "already has"
                )
            self.catalog.audio[entry.id] = entry.model_copy(update={"provider": name})

    def _check_providers(self) -> None:
        """Every catalog model must name a registered provider (one line otherwise)."""
        for entry in self.catalog.entries:
            if entry.provider not in self.providers:
                raise StartupError(
                    f"model {entry.id!r} names provider {entry.provider!r}, which no plugin "
                    f"registered (registered: {', '.join(sorted(self.providers)) or 'none'})"
                )
