"""Every hook of npcbridge, in the order a server and a turn call them, and how each is called.

Plugin authors import the marker from the package: ``@npcbridge.hookimpl``. Any hook may be a plain
function or return an awaitable (``async def`` works); the caller awaits what it gets, except for
the per-token hooks (``npcbridge_transform_delta``, ``npcbridge_flush_delta``), which must be
synchronous. pluggy orders implementations newest-registered first; ``tryfirst``/``trylast``
change that.

:data:`CALL_MODES` is the one table that says how each hook is called; the plugin manager
(:meth:`npcbridge.plugin.manager.PluginManager.call`) dispatches from it:

* ``all`` -- every implementation runs; the caller gets the non-None answers in call order;
* ``firstresult`` -- implementations run in order until one answers non-None; later ones do not
  run;
* ``chain`` -- the value named by the mode (``text``) passes through every implementation; each
  receives the previous one's output and returns the new value (None keeps it).

Every hook here has a section in ``docs/plugins.md`` stating its arguments and call mode
(``tests/test_docs.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pluggy

if TYPE_CHECKING:
    from ..gateway.catalog import Catalog
    from ..pipeline.turn import Turn, TurnResult
    from .api import PluginAPI

hookspec = pluggy.HookspecMarker("npcbridge")
hookimpl = pluggy.HookimplMarker("npcbridge")


@dataclass(frozen=True)
class CallMode:
    """How a hook is called: ``kind`` and, for a chain, the argument that carries the value."""

    kind: Literal["all", "firstresult", "chain"]
    value: str | None = None

    def __str__(self) -> str:
        return f"chain({self.value})" if self.kind == "chain" else self.kind


ALL = CallMode("all")
FIRST_RESULT = CallMode("firstresult")
CHAIN_TEXT = CallMode("chain", "text")

#: the call mode of every hook (dispatch reads this table; docs/plugins.md states the same)
CALL_MODES: dict[str, CallMode] = {
    "npcbridge_startup": ALL,
    "npcbridge_shutdown": ALL,
    "npcbridge_register_settings": ALL,
    "npcbridge_register_providers": ALL,
    "npcbridge_register_audio_providers": ALL,
    "npcbridge_register_handlers": ALL,
    "npcbridge_register_routes": ALL,
    "npcbridge_register_features": ALL,
    "npcbridge_persona": ALL,
    "npcbridge_render_state": FIRST_RESULT,
    "npcbridge_recall": ALL,
    "npcbridge_memory_relevance": FIRST_RESULT,
    "npcbridge_select_model": FIRST_RESULT,
    "npcbridge_before_request": ALL,
    "npcbridge_transform_delta": CHAIN_TEXT,
    "npcbridge_text_sent": ALL,
    "npcbridge_flush_delta": ALL,
    "npcbridge_stream_end": ALL,
    "npcbridge_post_process": CHAIN_TEXT,
    "npcbridge_reply_fields": ALL,
    "npcbridge_after_turn": ALL,
    "npcbridge_extension": FIRST_RESULT,
    "npcbridge_forget_player": ALL,
}


# ------------------------------------------------------------------------ lifecycle


@hookspec
def npcbridge_startup(api: PluginAPI) -> None | Awaitable[None]:
    """Run once when the server starts, after configuration, providers and the store are ready.

    Use it to open connections, warm caches or load models (heavy work belongs here, not in the
    first turn). ``api`` (:class:`npcbridge.plugin.api.PluginAPI`) gives ``store``, ``catalog``,
    ``plugin_settings(name)``, ``metrics``, ``logger(name)``, ``persona(npc)``, ``call`` (the
    hooks) and ``turns`` (the pipeline and gateway); a class plugin keeps it for later. An
    exception stops start-up with the plugin's message.
    """


@hookspec
def npcbridge_shutdown(api: PluginAPI) -> None | Awaitable[None]:
    """Run once when the server stops; close what ``npcbridge_startup`` opened."""


# ------------------------------------------------------------------------ registration


@hookspec
def npcbridge_register_settings(register: Callable[[str, Any], None]) -> None:
    """Declare a settings section: call ``register(name, model)`` with a pydantic model class.

    The server validates the config file's ``[extra.<name>]`` table against ``model`` when it is
    built (a bad value stops start-up with one line naming the field) and hands the validated
    instance out as ``api.plugin_settings(name)``; an absent table gives the model's defaults.
    Runs before ``npcbridge_startup``; must be synchronous.
    """


@hookspec
def npcbridge_register_providers(register: Callable[..., None], api: PluginAPI) -> None:
    """Register upstream providers: call ``register(name, provider, models=[...])`` for each.

    ``provider`` implements :class:`npcbridge.providers.base.Provider`. ``models`` (optional) are
    :class:`npcbridge.gateway.catalog.ModelEntry` items added to the catalog, served by this
    provider;
    they are chosen only when named (persona ``model``, a hook, a fallback) unless an entry sets
    ``tier`` itself. A catalog model naming a provider nobody registered stops start-up. The
    builtin registers ``openai`` (any OpenAI-compatible URL, Groq by default) and ``offline``.
    """


@hookspec
def npcbridge_register_audio_providers(register: Callable[..., None], api: PluginAPI) -> None:
    """Register speech providers: call ``register(name, provider, models=[...])`` for each.

    ``provider`` implements :class:`npcbridge.providers.audio.AudioProvider` (``speech`` and/or
    ``transcribe``); ``models`` (optional) are :class:`npcbridge.gateway.catalog.AudioModelEntry`
    items (``kind`` ``tts`` or ``stt``) added to the catalog's speech models, served by this
    provider. A speech model is usable only while its provider is registered. The builtin
    registers ``openai`` (the upstream's ``/audio/*``, or ``upstream.audio_base_url``) when a key
    or an audio URL is configured, and ``espeak`` (offline text to speech) when espeak-ng works.
    Runs at start-up before ``npcbridge_startup``.
    """


@hookspec
def npcbridge_register_handlers(register: Callable[..., None], api: PluginAPI) -> None:
    """Serve client message types: call ``register(type, handler, cancellable=False)``.

    ``handler`` is ``async def handler(session, message)``; ``message`` is the validated message
    (``x.*`` types arrive as :class:`npcbridge.protocol.messages.Extension`). Each message runs
    as its own task, so a slow handler never delays the connection's other messages; a
    :class:`~npcbridge.protocol.ProtocolError` it raises is sent with the request id, any other
    exception answers ``internal``. ``cancellable=True`` makes the request in flight under its
    id (counted by ``max_in_flight``; a ``cancel`` stops it and nothing more is sent). A type
    registered twice stops start-up.
    """


@hookspec
def npcbridge_register_routes(register: Callable[..., None], api: PluginAPI) -> None:
    """Add plain-HTTP routes on the WebSocket port: call ``register(path, route, *,
    methods=("GET",), prefix=False, admin=False)``.

    ``route(request)`` gets an :class:`npcbridge.plugin.http.HttpRequest` and returns an
    :class:`~npcbridge.plugin.http.HttpResponse` (or is a coroutine function returning one); it
    runs on the event loop, so it must not block. ``prefix=True`` answers every path under
    ``path`` (which ends with ``/``); an exact route wins over a prefix, a longer prefix over a
    shorter one. ``admin=True`` lets only trusted requests (loopback peer or the server token)
    from the server's own origin reach it. ``/healthz``, paths under ``/v1/``, an unknown method
    and a path registered twice stop start-up.
    """


@hookspec
def npcbridge_register_features(register: Callable[[str], None], api: PluginAPI) -> None:
    """Announce features in ``welcome.features``: call ``register(name)`` for each."""


# ------------------------------------------------------------------------ one turn


@hookspec
def npcbridge_persona(turn: Turn) -> list[str] | str | None | Awaitable[list[str] | str | None]:
    """Return parts of the system prompt for this turn (a string or a list of strings).

    Parts from all plugins are joined in call order with blank lines. The builtin persona plugin
    describes the NPC from its persona and adds the in-character rules.
    """


@hookspec
def npcbridge_render_state(turn: Turn, state: dict[str, Any]) -> str | None | Awaitable[str | None]:
    """Render an NPC's state as a system-prompt part for this turn, or None to let the next
    plugin decide.

    ``state`` is the map ``reply.end.state`` carries (``mood``, ``intensity`` and, for a
    player, ``relationship`` with ``trust``, ``affection``, ``familiarity``; docs/state.md).
    Called only for NPCs whose persona declares ``state``. The first non-None answer is the
    part; the state feature's own rendering answers last. Return ``""`` to leave the state out
    of the prompt.
    """


@hookspec
def npcbridge_recall(turn: Turn) -> list[dict[str, str]] | None | Awaitable[Any]:
    """Return chat messages (``{"role", "content"}``) that go between the system prompt and the
    player's line: conversation history and recalled memories.

    Results of all plugins are concatenated in call order. The builtin memory plugin returns the
    recent window for (npc, player) and the top long-term memories.
    """


@hookspec
def npcbridge_memory_relevance(
    query: str, texts: list[str], api: PluginAPI
) -> list[float] | None | Awaitable[list[float] | None]:
    """Return how relevant each of ``texts`` (long-term memories) is to ``query`` (the
    player's line, or the ``memory.query`` text): one float per text, any scale (for example
    cosine similarity of sentence embeddings), or None to let the next plugin decide.

    The first non-None answer in call order wins; without one the builtin memory uses lexical
    overlap. Recall min-max normalises the scores and adds recency and importance
    (Generative-Agents ranking, see ``docs/memory.md``). Runs before the request goes upstream:
    keep it fast and run heavy work off the event loop (``asyncio.to_thread``).
    """


@hookspec
def npcbridge_select_model(turn: Turn, catalog: Catalog) -> str | None | Awaitable[str | None]:
    """Return the model id (or alias) for this turn, or None to let the next plugin decide.

    The first non-None answer in call order wins; use ``tryfirst=True`` to override the builtin
    rule (urgency, persona, remaining budget and model health).
    """


@hookspec
def npcbridge_before_request(turn: Turn) -> None | Awaitable[None]:
    """Inspect or edit the request just before it goes upstream.

    Change ``turn.text``, ``turn.messages``, ``turn.system_parts`` or ``turn.params`` in place;
    every edit applies to this request only. An edited ``turn.text`` is what the upstream
    receives; the stored history keeps the player's original line (``turn.player_text``). To
    refuse the turn raise :class:`npcbridge.protocol.ProtocolError` (for example with code
    ``filtered``); the player then gets that error and nothing is sent upstream.
    """


@hookspec
def npcbridge_transform_delta(turn: Turn, text: str) -> str | None:
    """Transform one streamed piece of reply text before it is sent.

    Receives the previous plugin's output (``text``); return the new text ('' to hold it back),
    or None to leave it unchanged. Must be fast and synchronous: it runs for every streamed piece (a
    token, or the tokens of one network read; never assume word boundaries). Keep per-turn
    state in ``turn.state``. Held-back text is flushed by ``npcbridge_flush_delta``.
    """


@hookspec
def npcbridge_text_sent(turn: Turn, text: str) -> None:
    """A piece of reply text reached the player (after every transform, the speaker cut and
    moderation included): what the NPC says, in order. Called for each piece sent, also when
    ``stream`` is false (the text then goes out in ``reply.end``), and for text released at the
    end of the stream. Must be fast and synchronous; keep per-turn state in ``turn.state``
    (voice segments spoken units here).
    """


@hookspec
def npcbridge_flush_delta(turn: Turn) -> str | None:
    """The stream ended; return any text this plugin's delta transform held back (or None).

    Each plugin's flush runs right after its own ``npcbridge_transform_delta`` would, so the
    released text still passes through the transforms called after it.
    """


@hookspec
def npcbridge_stream_end(turn: Turn, finish: str) -> None | Awaitable[None]:
    """The reply's text is complete (``finish``: how the stream ended, "cancelled" included);
    ``reply.end`` has not been sent. A plugin may finish work tied to the text here and
    ``turn.emit`` its frames (voice sends its pending audio), bounded in time: the turn waits
    for every implementation. A ``cancel`` arriving meanwhile ends the turn "cancelled" (the
    waiting implementation sees the cancellation and must stop at once); an exception is
    logged and the reply ends as it would without that plugin.
    """


@hookspec
def npcbridge_post_process(turn: Turn, text: str, finish: str) -> str | None | Awaitable[Any]:
    """Clean up the complete reply text (``finish`` says how the stream ended).

    Return the new text or None to keep it. When the final text differs from what was
    streamed, ``reply.end`` carries ``rewritten: true``.
    """


@hookspec
def npcbridge_reply_fields(
    turn: Turn, result: TurnResult
) -> dict[str, Any] | None | Awaitable[dict[str, Any] | None]:
    """Return extra fields for this turn's ``reply.end`` (a dict), or None.

    The dicts of all plugins are merged in call order into the frame; a field the server already
    sets (``text``, ``usage``...) or an earlier plugin set is kept and the clash is logged.
    Values must be msgpack-encodable (str, int, float, bool, None, lists, maps); a plugin whose
    answer is not such a map, or whose hook raises, adds nothing (the failure is logged).
    """


@hookspec
def npcbridge_after_turn(turn: Turn, result: TurnResult) -> None | Awaitable[None]:
    """Run after ``reply.end`` was sent: remember the turn, account cost, update metrics.

    ``result.finish`` tells whether the turn completed (``stop``/``length``) or was cancelled,
    filtered or failed. Runs for every turn that reached the upstream.
    """


# ------------------------------------------------------------------------ protocol extensions


@hookspec
def npcbridge_extension(
    message: dict[str, Any], session: Any
) -> dict[str, Any] | list[dict[str, Any]] | None | Awaitable[Any]:
    """Handle a client message whose ``type`` starts with ``x.``.

    Return the answer message(s) to send (the server adds the request ``id``), or None when this
    plugin does not handle the type. Unclaimed types get ``error`` ``unknown_type``. It runs as
    its own task like a registered handler: a raised ``ProtocolError`` is sent with the request
    id, any other exception answers ``internal``. ``npcbridge_register_handlers`` serves
    ``x.*`` types too (and is called first).
    """


# ------------------------------------------------------------------------ privacy


@hookspec
def npcbridge_forget_player(player: str, npc: str | None) -> None | Awaitable[None]:
    """A player's data is being erased (``memory.forget``), for one NPC or (``npc`` None)
    every NPC: stop background work about them and erase what the plugin keeps outside the
    store. Runs before the store's own erasure (turns, memories, relationship state)."""
