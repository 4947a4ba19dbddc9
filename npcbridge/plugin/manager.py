"""The plugin manager of one server: loading plugins and calling hooks by their declared mode.

There is no global plugin manager: each server builds its own. Plugins come
from (in registration order) the builtins, the ``npcbridge`` entry-point group, the config's
``plugins`` list and ``--plugin module:attr`` flags. Later registrations are called first. A
plugin reached twice (installed *and* named in config or on the command line) is loaded once; a
class is instantiated without arguments wherever it comes from. Start-up logs one line per
loaded plugin: its name, version and where it came from.

Hooks are called through :meth:`PluginManager.call`, which looks the hook's mode up in
:data:`npcbridge.plugin.specs.CALL_MODES` (all / firstresult / chain) and iterates the
implementations in pluggy's order (newest first, ``tryfirst``/``trylast`` respected), so that
each may be sync or return an awaitable and a "firstresult" hook stops at the first answer
without starting the rest. Hook wrappers (``wrapper=True``) are not supported. An exception
raised by an implementation propagates unchanged, with a note naming the hook and the plugin.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from .. import __version__
from . import specs as hookspecs
from .guard import ANSWERS, checked
from .specs import CALL_MODES

if TYPE_CHECKING:
    from .api import PluginAPI

log = logging.getLogger("npcbridge.plugin.manager")

ENTRY_POINT_GROUP = "npcbridge"

BUILTIN_PLUGINS = (
    "npcbridge.builtin.providers",
    "npcbridge.builtin.persona",
    "npcbridge.memory.plugin",
    "npcbridge.builtin.model_select",
    "npcbridge.builtin.metrics",
    "npcbridge.builtin.emotes",
    "npcbridge.builtin.postprocess",
    "npcbridge.builtin.gameplay",
    "npcbridge.features.state.plugin",
    "npcbridge.builtin.voice",
    "npcbridge.console.plugin",
    "npcbridge.tracing.plugin",
)


def _short_name(module: str) -> str:
    """What the start-up line calls a builtin plugin: its module's name, or its package's for
    a package's ``plugin`` module (``npcbridge.memory.plugin`` is ``memory``)."""
    package, _, leaf = module.rpartition(".")
    return package.rpartition(".")[2] if leaf == "plugin" else leaf


class PluginLoadError(Exception):
    """A plugin could not be loaded, or its settings do not validate (one readable line)."""


@dataclass
class LoadedPlugin:
    """One plugin this server loaded: the name it is registered under, its version, and every
    place that named it (``builtin``, ``entry point <distribution>``, ``config``, ``--plugin``)."""

    name: str
    version: str
    sources: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The start-up log line's text."""
        return f"plugin {self.name} {self.version} from {', '.join(self.sources)}"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with npcbridge's hook specs and mode-driven dispatch."""

    def __init__(self) -> None:
        super().__init__("npcbridge")
        self.add_hookspecs(hookspecs)
        #: every plugin loaded, in registration order
        self.loaded: list[LoadedPlugin] = []
        self._impls: dict[str, tuple[pluggy.HookImpl, ...]] = {}

    def impls(self, hook_name: str) -> tuple[pluggy.HookImpl, ...]:
        """A hook's implementations in call order (pluggy keeps them in reverse); kept until
        a plugin is registered or unregistered (every turn asks for several hooks' lists)."""
        found = self._impls.get(hook_name)
        if found is None:
            found = tuple(reversed(getattr(self.hook, hook_name).get_hookimpls()))
            self._impls[hook_name] = found
        return found

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """pluggy's ``register``; the implementation lists are looked up again afterwards."""
        registered = super().register(plugin, name)
        self._impls.clear()
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        """pluggy's ``unregister``; the implementation lists are looked up again afterwards."""
        unregistered = super().unregister(plugin, name)
        self._impls.clear()
        return unregistered

    async def call(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a hook the way :data:`~npcbridge.plugin.specs.CALL_MODES` says; awaits answers.

        ``all`` returns the list of non-None answers, ``firstresult`` the first non-None answer
        (or None), ``chain`` the value after every implementation (pass it as its argument)."""
        fold = _Fold(hook_name, kwargs)
        for impl in self.impls(hook_name):
            # as call_one, inline: two coroutines per implementation were most of a sync
            # implementation's cost, and a turn calls about twenty
            value = _invoke(impl, hook_name, fold.kwargs)
            if inspect.isawaitable(value):
                value = await _resolve(value, impl, hook_name)
            if fold.add(value, impl):
                break
        return fold.outcome()

    async def call_one(self, impl: pluggy.HookImpl, hook_name: str, **kwargs: Any) -> Any:
        """One implementation's answer, awaited; an exception it raises carries the note naming
        the hook and the plugin (for callers that guard each plugin's answer on its own)."""
        value = _invoke(impl, hook_name, kwargs)
        if inspect.isawaitable(value):  # a synchronous implementation's answer is not awaited
            value = await _resolve(value, impl, hook_name)
        return value

    def call_sync(self, hook_name: str, **kwargs: Any) -> Any:
        """Like :meth:`call` for hooks that must be synchronous (no event loop needed)."""
        return self.caller(hook_name)(**kwargs)

    def caller(self, hook_name: str) -> Callable[..., Any]:
        """A synchronous dispatcher with the implementations bound once (per-token hooks call
        it for every streamed piece, so the lookup is not repeated on the hot path)."""
        impls = self.impls(hook_name)
        mode = CALL_MODES[hook_name]
        if mode.kind == "chain":
            assert mode.value is not None
            return _chain_caller(hook_name, impls, mode.value)

        def dispatch(**kwargs: Any) -> Any:
            fold = _Fold(hook_name, kwargs)
            for impl in impls:
                value = _invoke(impl, hook_name, fold.kwargs)
                if inspect.isawaitable(value):
                    _discard(value)
                    raise TypeError(
                        f"hook {hook_name} of plugin {impl.plugin_name} must be synchronous"
                    )
                if fold.add(value, impl):
                    break
            return fold.outcome()

        return dispatch


def _chain_caller(hook_name: str, impls: Sequence[pluggy.HookImpl], key: str) -> Callable[..., Any]:
    """:meth:`PluginManager.caller` of a chain hook: the same folding, checks and notes as
    :class:`_Fold`, without its per-call objects (a delta transform runs per streamed piece)."""
    check = ANSWERS[hook_name][0] if hook_name in ANSWERS else None
    bound = [(impl, impl.function, tuple(impl.argnames)) for impl in impls]

    def dispatch(**kwargs: Any) -> Any:
        for impl, function, names in bound:
            try:
                value = function(*[kwargs[name] for name in names])
            except Exception as exc:
                _note(exc, impl, hook_name)
                raise
            if value is None:
                continue
            if type(value) is not str:  # the common answer needs neither test below
                if inspect.isawaitable(value):
                    _discard(value)
                    raise TypeError(
                        f"hook {hook_name} of plugin {impl.plugin_name} must be synchronous"
                    )
                if check is not None:
                    checked(hook_name, value, plugin=impl.plugin_name)
            elif check is not None and not check(value):
                checked(hook_name, value, plugin=impl.plugin_name)
            kwargs[key] = value  # ``kwargs`` is this call's own dict
        return kwargs[key]

    return dispatch


def call_impl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one implementation with just the arguments it declares."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def _invoke(impl: pluggy.HookImpl, hook_name: str, kwargs: dict[str, Any]) -> Any:
    try:
        return call_impl(impl, **kwargs)
    except Exception as exc:
        _note(exc, impl, hook_name)
        raise


async def _resolve(value: Any, impl: pluggy.HookImpl, hook_name: str) -> Any:
    try:
        while inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        _note(exc, impl, hook_name)
        raise
    return value


def _note(exc: BaseException, impl: pluggy.HookImpl, hook_name: str) -> None:
    """Name the hook and plugin in the traceback (the exception itself is unchanged)."""
    exc.add_note(f"raised by hook {hook_name} of plugin {impl.plugin_name}")


def _discard(value: Any) -> None:
    close = getattr(value, "close", None)
    if close is not None:
        close()


class _Fold:
    """A call mode's fold of the answers, fed one implementation's answer at a time (the same
    for the awaiting and the synchronous dispatch): ``all`` collects the non-None answers,
    ``firstresult`` keeps the first one, ``chain`` passes each as the next call's argument.

    A chain's answer is checked (:data:`~npcbridge.plugin.guard.ANSWERS`) before the next
    implementation receives it: a wrong type would otherwise fail in the next plugin, and the
    log would name that plugin instead of the one that answered wrongly."""

    def __init__(self, hook_name: str, kwargs: dict[str, Any]) -> None:
        self.hook_name = hook_name
        self.mode = CALL_MODES[hook_name]
        #: the arguments of the next call (a chain's value replaced by the last answer)
        self.kwargs = kwargs
        self.answers: list[Any] = []

    def add(self, value: Any, impl: pluggy.HookImpl) -> bool:
        """Take ``impl``'s answer; True when the call is over (a firstresult hook answered)."""
        if value is None:
            return False
        if self.mode.kind == "chain":
            assert self.mode.value is not None
            if self.hook_name in ANSWERS:
                checked(self.hook_name, value, plugin=impl.plugin_name)
            self.kwargs = {**self.kwargs, self.mode.value: value}
            return False
        self.answers.append(value)
        return self.mode.kind == "firstresult"

    def outcome(self) -> Any:
        """The call's result in its mode."""
        if self.mode.kind == "chain":
            assert self.mode.value is not None
            return self.kwargs[self.mode.value]
        if self.mode.kind == "firstresult":
            return self.answers[0] if self.answers else None
        return self.answers


# ------------------------------------------------------------------------ loading


def _import(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PluginLoadError(f"plugin {spec!r}: {exc}") from None
    return obj


def _instantiate(obj: Any, spec: str) -> Any:
    """A class becomes an instance made without arguments (the same for every source)."""
    if not inspect.isclass(obj):
        return obj
    try:
        return obj()
    except Exception as exc:
        raise PluginLoadError(f"plugin {spec!r}: {type(exc).__name__}: {exc}") from None


def _version_of(obj: Any) -> str:
    """The version of the distribution that ships ``obj``'s top-level package, else its
    module's ``__version__``, else ``unversioned``."""
    module = inspect.getmodule(obj)
    top = (module.__name__ if module else "").partition(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    version = getattr(module, "__version__", None)
    return str(version) if version else "unversioned"


def make_plugin_manager(
    api: PluginAPI | None,
    extra: Iterable[str] = (),
    disabled: Iterable[str] = (),
    entry_points: bool = True,
    configured: Iterable[str] = (),
) -> PluginManager:
    """A new :class:`PluginManager` with the plugins :func:`load_plugins` finds."""
    pm = PluginManager()
    load_plugins(pm, api, extra, disabled, entry_points, configured)
    return pm


def load_plugins(
    pm: PluginManager,
    api: PluginAPI | None,
    extra: Iterable[str] = (),
    disabled: Iterable[str] = (),
    entry_points: bool = True,
    configured: Iterable[str] = (),
) -> None:
    """Register the builtins, then entry points, ``configured`` (the config's ``plugins``) and
    ``extra`` (``--plugin``) specs; ``disabled`` names are unregistered.

    A builtin module with a ``Plugin`` class is registered as ``Plugin(api)`` so that its state
    belongs to this server alone (``api`` is None only in tests of loading itself)."""
    builtin_names = []
    for name in BUILTIN_PLUGINS:
        module = importlib.import_module(name)
        factory = getattr(module, "Plugin", None)
        pm.register(factory(api) if factory is not None else module, name=name)
        builtin_names.append(_short_name(name))
    #: id of the object a source names -> its LoadedPlugin (so one plugin loads once)
    seen: dict[int, LoadedPlugin] = {}
    aliases: dict[str, str] = {}

    def add(raw: Any, name: str, source: str, version: str | None = None) -> None:
        known = seen.get(id(raw))
        if known is not None:
            known.sources.append(source)
            aliases[name] = known.name
            return
        if pm.get_plugin(name) is not None:
            raise PluginLoadError(f"plugin {name!r} ({source}): that name is already loaded")
        pm.register(_instantiate(raw, name), name=name)
        loaded = LoadedPlugin(name, version or _version_of(raw), [source])
        seen[id(raw)] = loaded
        pm.loaded.append(loaded)

    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "unknown distribution"
            try:
                raw = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {ep.name!r} (entry point of {dist}): {type(exc).__name__}: {exc}"
                ) from None
            add(raw, ep.name, f"entry point ({dist})", ep.dist.version if ep.dist else None)
    for spec in configured:
        add(_import(spec), spec, "config")
    for spec in extra:
        add(_import(spec), spec, "--plugin")
    for name in disabled:
        plugin = pm.get_plugin(aliases.get(name, name))
        if plugin is None:
            raise PluginLoadError(f"disable_plugins: no plugin named {name!r}")
        pm.unregister(plugin)
        pm.loaded = [p for p in pm.loaded if p.name != aliases.get(name, name)]
        if name in BUILTIN_PLUGINS:
            builtin_names.remove(_short_name(name))
    pm.check_pending()
    log.info("builtin plugins %s (npcbridge %s)", ", ".join(builtin_names), __version__)
    for loaded in pm.loaded:
        log.info("%s", loaded.describe())
