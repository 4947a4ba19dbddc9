"""Every hook of npcbridge, in the order a turn calls them.

Plugin authors import the marker from the package: ``@npcbridge.hookimpl``. Any hook may be a plain
function or return an awaitable (``async def`` works); the pipeline awaits what it gets. pluggy
calls implementations newest-registered first; ``tryfirst``/``trylast`` change that.
Hooks that "chain" receive the previous implementation's output.

Every hook here has a section in ``docs/plugins.md`` (``tests/test_docs.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .app import App
    from .models import Catalog
    from .turn import Turn, TurnResult

hookspec = pluggy.HookspecMarker("npcbridge")
hookimpl = pluggy.HookimplMarker("npcbridge")


# ------------------------------------------------------------------------ lifecycle


@hookspec
def npcbridge_startup(app: App) -> None | Awaitable[None]:
    """Run once when the server starts, after configuration and stores are ready.

    Use it to open connections or warm caches. ``app`` gives ``config``, ``store``, ``catalog``
    and ``plugins``. An exception stops start-up with the plugin's message.
    """


@hookspec
def npcbridge_shutdown(app: App) -> None | Awaitable[None]:
    """Run once when the server stops; close what ``npcbridge_startup`` opened."""


@hookspec
def npcbridge_register_providers(register: Callable[[str, Any], None], app: App) -> None:
    """Register upstream providers: call ``register(name, provider)`` for each.

    ``provider`` implements :class:`npcbridge.providers.base.Provider`. A model catalog entry names
    its provider (``provider = "groq"``); the builtin registers ``openai`` (any OpenAI-compatible
    URL, Groq by default) and ``offline``.
    """


# ------------------------------------------------------------------------ one turn


@hookspec
def npcbridge_persona(turn: Turn) -> list[str] | str | None | Awaitable[list[str] | str | None]:
    """Return parts of the system prompt for this turn (a string or a list of strings).

    Parts from all plugins are joined in call order with blank lines. The builtin persona plugin
    describes the NPC from its persona and adds the in-character rules.
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
    query: str, texts: list[str], app: App
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

    Change ``turn.text``, ``turn.messages`` or ``turn.params`` in place. To refuse the turn raise
    :class:`npcbridge.protocol.ProtocolError` (for example with code ``filtered``); the player
    then gets that error and nothing is sent upstream.
    """


@hookspec
def npcbridge_transform_delta(turn: Turn, text: str) -> str | None:
    """Chain: transform one streamed piece of reply text before it is sent.

    Receives the previous plugin's output; return the new text ('' to hold it back), or None
    to leave it unchanged. Must be fast and synchronous: it runs for every streamed piece (a
    token, or the tokens of one network read; never assume word boundaries). Keep per-turn
    state in ``turn.state``. Held-back text is flushed by ``npcbridge_flush_delta``.
    """


@hookspec
def npcbridge_flush_delta(turn: Turn) -> str | None:
    """Chain: the stream ended; return any text a delta transform held back (or None)."""


@hookspec
def npcbridge_post_process(turn: Turn, text: str, finish: str) -> str | None | Awaitable[Any]:
    """Chain: clean up the complete reply text (``finish`` says how the stream ended).

    Return the new text or None to keep it. When the final text differs from what was
    streamed, ``reply.end`` carries ``rewritten: true``.
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
    plugin does not handle the type. Unclaimed types get ``error`` ``unknown_type``.
    """
