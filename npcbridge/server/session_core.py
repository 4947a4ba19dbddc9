"""What every client session does, whatever carries its messages: the pump around the rules.

The rules (handshake, token, version, bad messages, message rate, ids in flight, cancel,
``npc.define``) are :class:`~npcbridge.protocol.connection.ConnectionMachine`, which has no I/O.
A session feeds it each message with the time, hands the frames the machine answers with to its
transport (:meth:`SessionCore.send`), starts and cancels the tasks its events ask for (turns
through the pipeline, plugin handlers), tells the machine when a request ends, and closes when
told to. Ending a session cancels its turns (and so their upstream requests).

Two transports pump the same core: the WebSocket :class:`~.session.Session` and the plain-HTTP
:class:`~.http_session.HttpSession`. Plugin handlers get either as ``session`` and use only what
is here (``send``, ``track``, ``plugin_state``, ``check_text``, ``id``, ``npcs``, ``client``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..builtin.persona import persona_from_card
from ..gateway.ratelimit import Bucket
from ..pipeline.actions import check_schema
from ..pipeline.turn import BARGE_IN, Turn
from ..protocol import CloseCode, ErrorCode, ProtocolError
from ..protocol.codec import request_id_of
from ..protocol.connection import ConnectionMachine, ConnectionSettings, ServerParts
from ..protocol.events import (
    CancelRequest,
    Close,
    Event,
    RunExtension,
    RunHandler,
    StartTurn,
)
from ..protocol.frames import STREAM_FRAMES, error_frame, internal_error
from ..protocol.messages import Message

if TYPE_CHECKING:
    from ..config import ServerConfig
    from .context import ServerContext

log = logging.getLogger("npcbridge.server")


Handler = Callable[["SessionCore", Message], Awaitable[None]]
S = TypeVar("S")


def connection_settings(config: ServerConfig) -> ConnectionSettings:
    """The ``[server]`` settings the connection rules read."""
    return ConnectionSettings(
        token=config.token.get_secret_value() if config.token else None,
        max_in_flight=config.max_in_flight,
        max_bad_messages=config.max_bad_messages,
        max_messages_per_s=config.max_messages_per_s,
        max_text_chars=config.max_text_chars,
        max_message_bytes=config.max_message_bytes,
    )


def server_parts(context: ServerContext) -> ServerParts:
    """What the connection rules look up in the server: personas, handlers, welcome fields."""
    registry = context.registry

    def handler(mtype: str) -> bool | None:
        found = registry.handlers.get(mtype)
        return None if found is None else found.cancellable

    return ServerParts(
        persona=context.api.persona,
        card_persona=persona_from_card,
        action_problem=check_schema,
        handler=handler,
        bucket=lambda rate, now: Bucket.per_second(rate, clock=lambda: now),
        server_name=context.server_name,
        models=tuple(context.catalog.ids()),
        features=tuple(registry.features),
    )


class SessionCore:
    """State of one client session; a transport subclass delivers frames (:meth:`send`) and
    closes (:meth:`_close`)."""

    def __init__(self, context: ServerContext) -> None:
        #: the server's parts this session uses (pipeline, registry, plugin API)
        self.context = context
        self.config = context.settings
        self.id = secrets.token_hex(8)
        self.loop = asyncio.get_running_loop()
        #: the session's protocol state (ids in flight, NPCs, counters)
        self.machine = ConnectionMachine(
            self.id, connection_settings(self.config), server_parts(context), self.loop.time()
        )
        #: NPCs defined in this session with ``npc.define`` (the machine's, read only)
        self.npcs = self.machine.npcs
        #: the tasks of the requests in flight (turns and tracked handlers), by request id
        self.turns: dict[str | int, asyncio.Task[None]] = {}
        #: handlers running as their own tasks, not cancellable by id (see _spawn)
        self.handler_tasks: set[asyncio.Task[None]] = set()
        #: per-session state of plugins, one instance per class (see plugin_state)
        self._plugin_state: dict[type, object] = {}
        #: while not None, the tasks the message being pumped started (see _started)
        self._starting: list[asyncio.Task[None]] | None = None

    @property
    def client(self) -> str:
        """The ``client`` string of the session's ``hello``."""
        return self.machine.client

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame for this client."""
        raise NotImplementedError

    async def _close(self, code: CloseCode, reason: str) -> None:
        """End the session as the machine asked (after what was sent so far)."""
        raise NotImplementedError

    def send_error(self, exc: ProtocolError) -> None:
        """Queue an ``error`` frame."""
        self.send(error_frame(exc))

    async def _cancel_tasks(self) -> None:
        """Cancel the session's turns and handlers (and so their upstream requests)."""
        tasks = [*self.turns.values(), *self.handler_tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _started(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Note a task the message being pumped started (the HTTP transport waits for them)."""
        if self._starting is not None:
            self._starting.append(task)
        return task

    # ---------------------------------------------------------------- pumping

    async def _pump(self) -> None:
        """Send the machine's frames, then act on its events."""
        for frame in self.machine.frames_to_send():
            self.send(frame)
        for event in self.machine.events_received():
            await self._act(event)

    async def _act(self, event: Event) -> None:
        if isinstance(event, StartTurn):
            self._start_turn(event)
        elif isinstance(event, CancelRequest):
            task = self.turns.get(event.request_id)
            if task is not None:
                # on the next loop turn: a task started by a message read in the same batch
                # runs its first step before the cancel, so it can answer it (and end)
                self.loop.call_soon(task.cancel, BARGE_IN if event.barge_in else None)
        elif isinstance(event, RunHandler):
            handler = self.context.registry.handlers[event.type]
            if event.tracked and event.request_id is not None:
                self._track(event.request_id, handler(self, event.message))
            else:
                self._spawn(event.raw, handler(self, event.message))
        elif isinstance(event, RunExtension):
            self._spawn(event.raw, self._extension(event.raw))
        elif isinstance(event, Close):
            await self._close(event.code, event.reason)

    def _spawn(self, raw: dict[str, Any], coro: Awaitable[None]) -> None:
        """Run a handler as its own task, so the connection's other messages (a ``ping``) are
        served while it works. A ``ProtocolError`` it raises refuses the message with its id,
        as if raised at the door; any other exception answers ``internal`` with the id."""
        request_id = request_id_of(raw)

        async def run() -> None:
            try:
                await coro
            except ProtocolError as exc:
                self.machine.handler_refused(exc, raw)
                await self._pump()
            except Exception as exc:
                stage = f"the {raw['type']} handler"
                self.context.pipeline.failures.report(request_id or "-", "-", stage, exc)
                self.send_error(internal_error(request_id))

        task = self._started(asyncio.create_task(run()))
        self.handler_tasks.add(task)
        task.add_done_callback(self.handler_tasks.discard)

    def check_text(self, kind: str, text: str, request_id: str | int | None) -> None:
        """Refuse a line longer than ``server.max_text_chars`` with ``bad_request``."""
        self.machine.check_text(kind, text, request_id)

    def _start_turn(self, event: StartTurn) -> None:
        message = event.say
        turn = Turn.from_say(
            message, event.persona, self.id, self.send if message.stream else self._send_final
        )
        self.turns[message.id] = self._started(asyncio.create_task(self._run_turn(turn)))

    def _send_final(self, frame: dict[str, Any]) -> None:
        """``emit`` of a ``stream: false`` say: only ``reply.end`` (and errors) reach the client;
        its emotes and actions are listed in ``reply.end``."""
        if frame.get("type") not in STREAM_FRAMES:
            self.send(frame)

    async def _run_turn(self, turn: Turn) -> None:
        result = None
        try:
            result = await self.context.pipeline.run(turn)
        except Exception as exc:  # the pipeline answers its own failures; this is the backstop
            self.context.pipeline.failures.report(turn.request_id, turn.npc, "the turn", exc)
            self.send_error(internal_error(turn.request_id))
        finally:
            self.turns.pop(turn.request_id, None)
            self.machine.request_done(turn.request_id)
        if result is not None:
            await self.context.pipeline.finish(turn, result)

    def plugin_state(self, kind: type[S]) -> S:
        """This connection's instance of ``kind``, made by ``kind()`` on first use: where a
        plugin keeps per-session state (a feature's open scenes); it ends with the
        session."""
        found = self._plugin_state.get(kind)
        if found is None:
            found = self._plugin_state[kind] = kind()
        return cast(S, found)

    def track(self, request_id: str | int, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run a request handler as a cancellable in-flight task (used by feature handlers);
        returns the task (a ``cancel`` of ``request_id`` cancels it). Raises the refusal when
        the id is in flight already or ``max_in_flight`` requests run."""
        try:
            self.machine.admit(request_id)
        except ProtocolError:
            if inspect.iscoroutine(coro):
                coro.close()  # refused: it will never run
            raise
        return self._track(request_id, coro)

    def _track(self, request_id: str | int, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run an admitted request; it leaves the machine's ids in flight when it ends."""

        async def run() -> None:
            try:
                await coro
            except ProtocolError as exc:
                exc.request_id = request_id
                self.send_error(exc)
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("request %r failed", request_id)
                self.send_error(internal_error(request_id))
            finally:
                self.turns.pop(request_id, None)
                self.machine.request_done(request_id)

        task = self.turns[request_id] = self._started(asyncio.create_task(run()))
        return task

    async def _extension(self, raw: dict[str, Any]) -> None:
        answer = await self.context.api.call("npcbridge_extension", message=raw, session=self)
        request_id = raw.get("id")
        if answer is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE,
                "field 'type': no plugin handles this message type",
                request_id=request_id,
            )
        for frame in answer if isinstance(answer, list) else [answer]:
            if request_id is not None:
                frame.setdefault("id", request_id)
            self.send(frame)
