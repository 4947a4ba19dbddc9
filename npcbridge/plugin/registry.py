"""What plugins register at start-up: message handlers, HTTP routes, welcome features, settings.

The registration hooks (``npcbridge_register_*`` in :mod:`npcbridge.plugin.specs`) hand each plugin
a ``register`` callback bound to one :class:`Registry`; nothing else writes into it. The session
reads :attr:`Registry.handlers`, the HTTP layer :attr:`Registry.routes`, ``welcome``
:attr:`Registry.features`, plugins their validated settings through
:meth:`Registry.settings`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from ..config import ConfigError, Sections
from .http import Route
from .manager import PluginLoadError

#: ``async def handler(session, message)``
HandlerFn = Callable[[Any, Any], Awaitable[None]]

#: message types the session itself serves; no plugin may take them over
CORE_TYPES = frozenset({"hello", "say", "cancel", "npc.define", "ping"})
#: features of the core protocol, always announced first
CORE_FEATURES = ("stream", "cancel", "emotes", "actions")
#: paths the server answers itself; ``/v1/`` is the HTTP transport
RESERVED_PATHS = frozenset({"/healthz"})
RESERVED_PREFIXES = ("/v1/",)
#: what a route may be asked for
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RegistrationError(PluginLoadError):
    """A plugin registered something that clashes (a type or path twice, a core type)."""


class SettingsError(RegistrationError, ConfigError):
    """A plugin's settings section does not validate (one line naming the field): a
    configuration error, found while the plugins are registered."""


@dataclass(frozen=True)
class MessageHandler:
    """A registered client message type."""

    type: str
    fn: HandlerFn
    #: in flight under its request id while it runs (``max_in_flight``, ``cancel``)
    cancellable: bool = False

    def __call__(self, session: Any, message: Any) -> Awaitable[None]:
        """Run the handler for one message."""
        return self.fn(session, message)


@dataclass(frozen=True)
class RegisteredRoute:
    """A registered HTTP route and who may reach it."""

    path: str
    route: Route
    methods: frozenset[str]
    #: answers every path under :attr:`path` (which then ends with ``/``)
    prefix: bool = False
    #: only trusted requests from the server's own origin reach it
    admin: bool = False

    def __call__(self, request: Any) -> Any:
        """Answer one request."""
        return self.route(request)


@dataclass
class Registry:
    """Handlers, routes, features and settings sections of one server."""

    _handlers: dict[str, MessageHandler] = field(default_factory=dict)
    _routes: dict[str, RegisteredRoute] = field(default_factory=dict)
    _features: list[str] = field(default_factory=lambda: list(CORE_FEATURES))
    _settings: dict[str, BaseModel] = field(default_factory=dict)

    @property
    def handlers(self) -> Mapping[str, MessageHandler]:
        """Registered message types (read-only)."""
        return MappingProxyType(self._handlers)

    @property
    def routes(self) -> Mapping[str, RegisteredRoute]:
        """Registered HTTP routes by path (read-only)."""
        return MappingProxyType(self._routes)

    def route_for(self, path: str) -> RegisteredRoute | None:
        """The route answering ``path``: its exact route, else the longest prefix route."""
        found = self._routes.get(path)
        if found is not None:
            return found
        best: RegisteredRoute | None = None
        for candidate in self._routes.values():
            if (
                candidate.prefix
                and path.startswith(candidate.path)
                and (best is None or len(candidate.path) > len(best.path))
            ):
                best = candidate
        return best

    @property
    def features(self) -> tuple[str, ...]:
        """``welcome.features`` in announcement order."""
        return tuple(self._features)

    def add_handler(self, type: str, handler: HandlerFn, cancellable: bool = False) -> None:
        """The ``register`` of ``npcbridge_register_handlers``."""
        if not isinstance(type, str) or not type or type in CORE_TYPES:
            raise RegistrationError(f"register_handlers: {type!r} cannot be registered")
        if type in self._handlers:
            raise RegistrationError(f"register_handlers: {type!r} is registered twice")
        self._handlers[type] = MessageHandler(type, handler, cancellable)

    def add_route(
        self,
        path: str,
        route: Route,
        *,
        methods: Iterable[str] = ("GET",),
        prefix: bool = False,
        admin: bool = False,
    ) -> None:
        """The ``register`` of ``npcbridge_register_routes``."""
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or path in RESERVED_PATHS
            or path.startswith(RESERVED_PREFIXES)
            or (prefix and not path.endswith("/"))
            or not callable(route)
        ):
            raise RegistrationError(f"register_routes: {path!r} cannot be registered")
        allowed = frozenset(str(m).upper() for m in methods)
        if not allowed or not allowed <= HTTP_METHODS:
            raise RegistrationError(f"register_routes: {path!r}: unknown HTTP method")
        if path in self._routes:
            raise RegistrationError(f"register_routes: {path!r} is registered twice")
        self._routes[path] = RegisteredRoute(path, route, allowed, prefix, admin)

    def add_feature(self, name: str) -> None:
        """The ``register`` of ``npcbridge_register_features`` (a repeated name counts once)."""
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"register_features: {name!r} is not a feature name")
        if name not in self._features:
            self._features.append(name)

    def add_settings(
        self, name: str, model: type[BaseModel], extra: Sections | Mapping[str, Any]
    ) -> None:
        """Validate the ``[extra.<name>]`` table against ``model``; the typed section is then
        also ``config.section(name)``."""
        if name in self._settings:
            raise RegistrationError(f"register_settings: {name!r} is registered twice")
        sections = extra if isinstance(extra, Sections) else Sections.model_validate(dict(extra))
        try:
            self._settings[name] = sections.register(name, model)
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None

    def settings(self, name: str) -> BaseModel:
        """The validated settings section ``name``; KeyError when nobody registered it."""
        return self._settings[name]
