"""The plugin manager of one server, and the helpers that call hooks.

There is no global plugin manager: each :class:`npcbridge.app.App` builds its own. Plugins come
from (in registration order) the builtins, the ``npcbridge`` entry-point group, the config's
``plugins`` list and ``--plugin module:attr`` flags. Later registrations are called first.

Hooks are called by iterating their implementations in pluggy's call order (newest first,
``tryfirst``/``trylast`` respected) so that each implementation may be sync or return an
awaitable, and "first answer wins" hooks stop at the first non-None answer without starting the
rest. Hook wrappers (``wrapper=True``) are not supported.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

import pluggy

from . import hookspecs

log = logging.getLogger("npcbridge.plugins")

ENTRY_POINT_GROUP = "npcbridge"

BUILTIN_PLUGINS = (
    "npcbridge.builtin.providers",
    "npcbridge.builtin.persona",
    "npcbridge.builtin.memory",
    "npcbridge.builtin.model_select",
    "npcbridge.builtin.metrics",
    "npcbridge.builtin.emotes",
    "npcbridge.builtin.postprocess",
    "npcbridge.builtin.gameplay",
)


class PluginLoadError(Exception):
    """A plugin named in config or on the command line could not be loaded."""


def load_object(spec: str) -> Any:
    """Import ``module`` or ``module:attr`` and return the object."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PluginLoadError(f"plugin {spec!r}: {exc}") from None
    if inspect.isclass(obj):
        obj = obj()
    return obj


def make_plugin_manager(
    app: Any,
    extra: Iterable[str] = (),
    disabled: Iterable[str] = (),
    entry_points: bool = True,
) -> pluggy.PluginManager:
    """Build a plugin manager with the builtins, entry points and ``extra`` plugin specs.

    A builtin module with a ``Plugin`` class is registered as ``Plugin(app)`` so that its
    state belongs to this server alone.
    """
    pm = pluggy.PluginManager("npcbridge")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        module = importlib.import_module(name)
        factory = getattr(module, "Plugin", None)
        pm.register(factory(app) if factory is not None else module, name=name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for spec in extra:
        pm.register(load_object(spec), name=spec)
    for name in disabled:
        plugin = pm.get_plugin(name)
        if plugin is None:
            raise PluginLoadError(f"disable_plugins: no plugin named {name!r}")
        pm.unregister(plugin)
    pm.check_pending()
    return pm


def hook_impls(pm: pluggy.PluginManager, hook_name: str) -> list[pluggy.HookImpl]:
    """A hook's implementations in call order (pluggy keeps them in reverse)."""
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


def implementations(pm: pluggy.PluginManager, hook_name: str) -> list[Callable[..., Any]]:
    """The implementations of a hook, in call order, each bound to its declared arguments."""
    return [_bind(impl.function, tuple(impl.argnames)) for impl in hook_impls(pm, hook_name)]


def call_impl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one implementation with just the arguments it declares."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def _bind(function: Callable[..., Any], argnames: tuple[str, ...]) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        return function(**{name: kwargs[name] for name in argnames})

    call.__name__ = getattr(function, "__qualname__", "hookimpl")
    return call


async def resolve(value: Any) -> Any:
    """Await ``value`` when it is awaitable (a hook may be sync or async)."""
    while inspect.isawaitable(value):
        value = await value
    return value


async def call_all(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Call every implementation; return the non-None answers in call order."""
    results = []
    for call in implementations(pm, hook_name):
        value = await resolve(call(**kwargs))
        if value is not None:
            results.append(value)
    return results


async def call_first(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> Any:
    """Call implementations in order until one answers non-None; return that answer."""
    for call in implementations(pm, hook_name):
        value = await resolve(call(**kwargs))
        if value is not None:
            return value
    return None


async def call_chain(
    pm: pluggy.PluginManager, hook_name: str, value_arg: str, value: Any, **kwargs: Any
) -> Any:
    """Pass ``value`` through every implementation (None keeps the previous value)."""
    for call in implementations(pm, hook_name):
        out = await resolve(call(**{value_arg: value, **kwargs}))
        if out is not None:
            value = out
    return value


def sync_chain(calls: list[Callable[..., Any]], value_arg: str, value: Any, **kwargs: Any) -> Any:
    """Like :func:`call_chain` for synchronous per-token hooks (no awaiting on the hot path)."""
    for call in calls:
        out = call(**{value_arg: value, **kwargs})
        if out is not None:
            value = out
    return value
