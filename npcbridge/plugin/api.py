"""What a plugin may use of the server it runs in: the public API hooks and handlers type against.

The composition root (:mod:`npcbridge.app`) builds one :class:`PluginAPI` per server and hands it
to every hook that works at server level (``npcbridge_startup(api)``,
``npcbridge_register_providers(register, api)``, ...) and to the builtin plugins' constructors.
A plugin keeps it (a class plugin in its ``npcbridge_startup``) to reach the store, the model
catalog, its validated settings, the metrics, persona lookup, the hooks, and :class:`Turns`: the
pipeline and gateway for requests of its own (barks, quests, summaries).

Per-turn hooks get the :class:`~npcbridge.pipeline.turn.Turn` instead; ``turn.emit`` sends frames to
the client of that turn, ``session.send`` those of a message handler.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..protocol.errors import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..config import Config
    from ..gateway.audio import AudioGateway
    from ..gateway.catalog import Catalog, ModelEntry
    from ..gateway.metrics import Metrics
    from ..pipeline.turn import Turn, TurnResult, Usage
    from ..protocol.messages import Persona
    from ..providers.base import ProviderRequest, StreamEvent
    from ..stores.base import Store
    from ..stores.writes import WriteQueue

#: ``await call(hook_name, **arguments)``: a hook called by its declared call mode
HookCall = Callable[..., Awaitable[Any]]


class Turns(Protocol):
    """The pipeline and gateway, for plugins that make requests of their own."""

    @property
    def audio(self) -> AudioGateway:
        """Speech requests (synthesis, transcription) through the gateway: budgets, rate
        limits, retries, fallbacks and breakers as for text (``docs/voice.md``)."""

    async def run(self, turn: Turn) -> TurnResult | None:
        """Run ``turn`` through every turn hook and the gateway; its frames go to
        ``turn.emit``. None when it was refused before reaching the upstream."""

    async def finish(self, turn: Turn, result: TurnResult) -> None:
        """Run the after-turn hooks for a turn :meth:`run` finished (and log it)."""

    def result(
        self,
        turn: Turn,
        model_id: str,
        text: str,
        finish: str,
        usage: Usage | None,
        queue_ms: float,
        first_token_at: float | None,
        streamed_text: str,
    ) -> TurnResult:
        """The :class:`~npcbridge.pipeline.turn.TurnResult` of work a plugin ran through
        :meth:`stream`
        (cost from the model's prices; ``first_token_at``: ``time.perf_counter()`` of the first
        delta, or None)."""

    def stream(
        self, turn: Turn, model: ModelEntry, request: ProviderRequest
    ) -> AsyncIterator[StreamEvent]:
        """The gateway's event stream for ``request`` (rate limits, retries, budgets, cache);
        no hook runs and nothing is accounted."""

    async def select_model(self, turn: Turn) -> ModelEntry:
        """The model ``npcbridge_select_model`` picks for ``turn`` (else the default)."""

    async def budget_left(self, turn: Turn) -> float | None:
        """The smallest fraction left of the budgets that apply to ``turn`` (None: none has a
        limit)."""

    def available(self, model_id: str) -> bool:
        """Whether the model's circuit breaker lets requests through."""


class PluginAPI:
    """The services of one running server that plugins use (see the module docstring)."""

    def __init__(
        self,
        *,
        config: Config,
        catalog: Catalog,
        settings: Callable[[str], BaseModel],
        metrics: Metrics,
        npcs: Mapping[str, Persona],
        call: HookCall,
        turns: Turns,
        store: Callable[[], Store | None],
        writes: Callable[[], WriteQueue | None],
        offline: bool,
        default_model: str,
    ) -> None:
        #: the validated configuration (read it, never change it)
        self.config = config
        #: every model the server knows, with prices and limits
        self.catalog = catalog
        #: the server's Prometheus metrics
        self.metrics = metrics
        #: ``await api.call(hook_name, **arguments)``, by the hook's declared call mode
        self.call = call
        #: the pipeline and gateway for requests of a plugin's own
        self.turns = turns
        #: True when NPCs answer with canned replies (no upstream key)
        self.offline = offline
        #: the model a turn gets when no hook picks one
        self.default_model = default_model
        self._settings = settings
        self._npcs = npcs
        self._store = store
        self._writes = writes

    @property
    def store(self) -> Store | None:
        """The memory store; None before start-up and after shutdown."""
        return self._store()

    @property
    def writes(self) -> WriteQueue | None:
        """The store's write queue: a write that must survive a store outage goes through
        ``await api.writes.write(lambda: ...)`` (queued and replayed in order while the store
        cannot be reached); None while no store is open."""
        return self._writes()

    def plugin_settings(self, name: str) -> BaseModel:
        """The validated ``[extra.<name>]`` section a plugin declared with
        ``npcbridge_register_settings`` (KeyError when none did)."""
        return self._settings(name)

    def logger(self, name: str) -> logging.Logger:
        """The logger of plugin ``name`` (``npcbridge.plugin.<name>``), configured with the
        server's log level and format."""
        return logging.getLogger(f"npcbridge.plugin.{name}")

    def persona(self, npc: str, session_npcs: Mapping[str, Persona] | None = None) -> Persona:
        """The persona of ``npc``: defined on the connection (``session.npcs``), else in the
        config; ``unknown_npc`` otherwise."""
        persona = (session_npcs or {}).get(npc) or self._npcs.get(npc)
        if persona is None:
            raise ProtocolError(ErrorCode.UNKNOWN_NPC, "field 'npc': unknown npc; define it first")
        return persona

    def model_entry(self, name: str) -> ModelEntry:
        """The catalog entry for a model id or alias (an unknown name passes through at zero
        cost, for servers such as Ollama whose models are not in the catalog)."""
        return self.catalog.entry(name)
