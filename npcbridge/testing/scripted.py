"""An in-process scripted provider, so the pipeline, the gateway and the features run without HTTP.

:class:`ScriptedProvider` is a :class:`~npcbridge.providers.base.Provider` that answers each
request with the next item of its script (text, a token list, an :class:`UpstreamError`, or a
:class:`Script` combining tokens, tool calls, an error, usage and finish reason), and records
every :class:`~npcbridge.providers.base.ProviderRequest` it got. :class:`ScriptedPlugin`
registers it through the ``npcbridge_register_providers`` hook, and :func:`start_scripted_app`
builds a started :class:`~npcbridge.app.App` (no WebSocket server, in-memory SQLite store)
whose every catalog model it serves::

    provider = ScriptedProvider()
    async with running_scripted_app(provider) as app:
        provider.script(UpstreamError(status=503), "Aye, lad.")
        said = await say(app, "blacksmith", "hello")
    assert said.end["text"] == "Aye, lad." and len(provider.requests) == 2

:func:`running_scripted_app` closes the app at the end of the block; the tests' ``scripted``
and ``scripted_app`` fixtures do the set-up and the closing for the default settings.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ..app import App
from ..pipeline.turn import Turn, TurnResult, Usage
from ..plugin.specs import hookimpl
from ..protocol.messages import Say
from ..providers.base import (
    ProviderRequest,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UpstreamError,
)
from .bridge import bridge_config
from .fake_upstream import ToolCall, count_prompt_tokens, default_reply, tokenize

#: the provider the default catalog's models name, which :func:`start_scripted_app` scripts
UPSTREAM_PROVIDER = "openai"


@dataclass
class Script:
    """One scripted answer. ``text`` is split into the fake upstream's word tokens, ``tokens``
    are sent as given (one :class:`TextDelta` each); ``tool_calls`` follow them (one
    :class:`ToolCallDelta` each). ``error`` is raised after those events (before any event when
    there are none), instead of the end. ``usage`` is reported in the end event (default: the
    fake upstream's prompt count and one output token per event; ``report_usage=False`` sends
    none). ``delay_s`` is slept before each event (for cancellation and timeout tests)."""

    text: str | None = None
    tokens: Sequence[str] | None = None
    tool_calls: Sequence[ToolCall] = ()
    error: UpstreamError | None = None
    usage: Usage | None = None
    report_usage: bool = True
    finish: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def pieces(self) -> list[str]:
        """The text deltas this answer streams."""
        if self.tokens is not None:
            return list(self.tokens)
        return tokenize(self.text or "")


ScriptItem = Script | str | Sequence[str] | UpstreamError


def as_script(item: ScriptItem) -> Script:
    """A :class:`Script` for a script item: a string is its text, a list of strings its tokens,
    an :class:`UpstreamError` the failure of the request."""
    if isinstance(item, Script):
        return item
    if isinstance(item, UpstreamError):
        return Script(error=item)
    if isinstance(item, str):
        return Script(text=item)
    return Script(tokens=list(item))


class ScriptedProvider:
    """A provider answering from a script, FIFO, one item per request; a request for a model
    with its own queue (``script(..., model=...)``) takes from that queue first. With the
    script empty it answers as the fake upstream's default generator does
    (``"Well met. You said: …"``)."""

    name = "scripted"

    def __init__(self) -> None:
        """An empty script."""
        self._script: deque[Script] = deque()
        self._by_model: dict[str, deque[Script]] = {}
        #: every request, in arrival order (``request.model`` is the model it was sent to)
        self.requests: list[ProviderRequest] = []
        #: streams that were closed before their end (cancelled, stopped, timed out)
        self.abandoned = 0
        self.closed = False
        self._arrived = asyncio.Condition()

    def script(self, *items: ScriptItem, model: str | None = None) -> None:
        """Queue answers; with ``model``, only for requests to that model id."""
        queue = self._script if model is None else self._by_model.setdefault(model, deque())
        queue.extend(as_script(item) for item in items)

    @property
    def pending(self) -> int:
        """Answers not yet used (all queues)."""
        return len(self._script) + sum(len(q) for q in self._by_model.values())

    async def wait_requests(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until at least ``count`` requests arrived (TimeoutError after ``timeout``)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    def _next(self, request: ProviderRequest) -> Script:
        queue = self._by_model.get(request.model)
        if queue:
            return queue.popleft()
        if self._script:
            return self._script.popleft()
        return Script(text=default_reply({"messages": request.messages}))

    async def stream(self, request: ProviderRequest) -> AsyncIterator[StreamEvent]:
        """Stream the next scripted answer for ``request``."""
        self.requests.append(request)
        async with self._arrived:
            self._arrived.notify_all()
        answer = self._next(request)
        events: list[StreamEvent] = [TextDelta(piece) for piece in answer.pieces()]
        events += [
            ToolCallDelta(index, call.id or f"call_{index}", call.name, call.arguments_json())
            for index, call in enumerate(answer.tool_calls)
        ]
        finished = False
        try:
            for event in events:
                if answer.delay_s > 0:
                    await asyncio.sleep(answer.delay_s)
                yield event
            if answer.delay_s > 0:
                await asyncio.sleep(answer.delay_s)
            if answer.error is not None:
                finished = True
                raise answer.error
            usage = answer.usage
            if usage is None and answer.report_usage:
                usage = Usage(count_prompt_tokens(request.messages), len(events))
            finished = True
            yield StreamDone(answer.finish, usage, dict(answer.headers))
        finally:
            if not finished:
                self.abandoned += 1

    async def aclose(self) -> None:
        """Nothing to release; remembered in :attr:`closed`."""
        self.closed = True


class ScriptedPlugin:
    """Registers ``provider`` under ``name`` (default: the provider the catalog's models name)
    through ``npcbridge_register_providers``, with ``models`` added to the catalog."""

    def __init__(
        self, provider: ScriptedProvider, name: str = UPSTREAM_PROVIDER, models: Sequence[Any] = ()
    ) -> None:
        """Keep what to register."""
        self.provider = provider
        self.name = name
        self.models = list(models)

    @hookimpl
    def npcbridge_register_providers(self, register: Any) -> None:
        """Register the scripted provider."""
        register(self.name, self.provider, models=self.models)


async def start_scripted_app(
    provider: ScriptedProvider,
    *,
    plugins: tuple[str, ...] = (),
    store_url: str = "sqlite:///:memory:",
    **overrides: Any,
) -> App:
    """A started :class:`App` whose upstream is ``provider``: the test stack's configuration
    (NPCs ``blacksmith`` and ``mage``, the default catalog) with ``section__field=value``
    ``overrides``; the builtin providers are not loaded, so every catalog model (and any
    uncatalogued name) is served by the script. Close it with ``await app.close()``."""
    disabled = list(overrides.pop("disable_plugins", ()))
    config = bridge_config(
        "http://127.0.0.1:9/v1",  # never contacted: no provider of this app speaks HTTP
        store_url,
        disable_plugins=[*disabled, "npcbridge.builtin.providers"],
        **overrides,
    )
    app = App(config, plugins, entry_points=False)
    app.plugins.register(ScriptedPlugin(provider), name="npcbridge.testing.scripted")
    await app.start()
    return app


@asynccontextmanager
async def running_scripted_app(
    provider: ScriptedProvider, *, plugins: tuple[str, ...] = (), **overrides: Any
) -> AsyncIterator[App]:
    """:func:`start_scripted_app` as an async context manager: the app is closed at the end of
    the block, however it ends."""
    app = await start_scripted_app(provider, plugins=plugins, **overrides)
    try:
        yield app
    finally:
        await app.close()


@dataclass
class Said:
    """What one in-process ``say`` produced: the frames the client would get, the result."""

    turn: Turn
    frames: list[dict[str, Any]]
    result: TurnResult | None

    @property
    def types(self) -> list[str]:
        """The frames' types, in order."""
        return [str(frame["type"]) for frame in self.frames]

    @property
    def end(self) -> dict[str, Any]:
        """The ``reply.end`` frame (KeyError when there is none)."""
        found = next((f for f in self.frames if f["type"] == "reply.end"), None)
        if found is None:
            raise KeyError(f"no reply.end among {self.types}")
        return found

    @property
    def error(self) -> dict[str, Any] | None:
        """The ``error`` frame, if the turn sent one."""
        return next((f for f in self.frames if f["type"] == "error"), None)

    @property
    def deltas(self) -> str:
        """The text of the ``reply.delta`` frames."""
        return "".join(str(f["text"]) for f in self.frames if f["type"] == "reply.delta")


async def say(
    app: App,
    npc: str,
    text: str,
    *,
    player: str = "p1",
    request_id: str | int = "t-1",
    session_id: str = "s-1",
    emit: Callable[[dict[str, Any]], None] | None = None,
    **fields: Any,
) -> Said:
    """Run one ``say`` through ``app``'s pipeline as a connection would (validated message,
    persona, turn, after-turn hooks) and collect every frame the pipeline emits (a
    ``stream: false`` connection passes on only ``reply.end`` and errors). ``fields`` are
    further ``say`` fields (``urgency``, ``max_tokens``, ``stream``, ``context``...); ``emit``
    also gets each frame as it is emitted (an :class:`~npcbridge.server.outbox.Outbox`)."""
    message = Say.model_validate(
        {"type": "say", "id": request_id, "npc": npc, "player": player, "text": text, **fields}
    )
    frames: list[dict[str, Any]] = []

    def record(frame: dict[str, Any]) -> None:
        frames.append(frame)
        if emit is not None:
            emit(frame)

    turn = Turn.from_say(message, app.api.persona(npc), session_id, record)
    result = await app.pipeline.run(turn)
    if result is not None:
        await app.pipeline.finish(turn, result)
    return Said(turn, frames, result)
