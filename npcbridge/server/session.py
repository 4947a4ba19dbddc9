"""One client connection: handshake, routing of requests, in-flight turns.

Protocol rules enforced here (see docs/protocol.md): ``hello`` first; token check; version check;
text frames and undecodable messages answer ``bad_request`` and more than ``max_bad_messages`` in
a row close with 1008; ``say`` beyond ``max_in_flight`` answers ``too_many_in_flight``; more
than ``max_messages_per_s`` messages per player (a token bucket per ``player`` named in the
message, and one for the connection's messages that name none; burst = one second's worth)
answer ``rate_limited`` with ``retry_after_ms``; a closed connection cancels its turns (and so
their upstream requests).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from ..actions import check_schema
from ..builtin.persona import persona_from_card
from ..pipeline import error_frame, internal_error, ok_frame
from ..protocol import (
    PROTOCOL_VERSION,
    CloseCode,
    DecodeError,
    ErrorCode,
    ProtocolError,
    check_version,
    decode_map,
)
from ..protocol.codec import refused_type, request_id_of, validate
from ..protocol.messages import (
    CLIENT_MESSAGES,
    Cancel,
    Hello,
    Message,
    NpcDefine,
    Persona,
    Ping,
    Say,
)
from ..ratelimit import Bucket
from ..turn import Turn
from .outbox import Outbox

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("npcbridge.server")

HELLO_TIMEOUT_S = 10.0
RECENT_IDS = 256
#: players one connection may keep rate-limit state for (oldest forgotten first)
MAX_RATE_BUCKETS = 1024
#: the frames a ``stream: false`` say does not get (everything before ``reply.end``)
STREAM_FRAMES = frozenset({"reply.start", "reply.delta", "emote", "action"})

Handler = Callable[["Session", Message], Awaitable[None]]
S = TypeVar("S")


class Session:
    """State of one connection."""

    def __init__(self, context: ServerContext, ws: Connection) -> None:
        #: the server's parts this connection uses (pipeline, registry, plugin API)
        self.context = context
        self.ws = ws
        self.config = context.settings
        self.id = secrets.token_hex(8)
        self.client = ""
        self.npcs: dict[str, Persona] = {}
        self.turns: dict[str | int, asyncio.Task[None]] = {}
        #: handlers running as their own tasks, not cancellable by id (see _spawn)
        self.handler_tasks: set[asyncio.Task[None]] = set()
        #: per-connection state of plugins, one instance per class (see plugin_state)
        self._plugin_state: dict[type, object] = {}
        self.recent: OrderedDict[str | int, None] = OrderedDict()
        self.bad_in_a_row = 0
        self.buckets: OrderedDict[str | None, Bucket] = OrderedDict()
        self.outbox = Outbox(ws, self.config.send_timeout_s, self.config.send_queue_bytes)

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame for this client."""
        self.outbox.emit(frame)

    def send_error(self, exc: ProtocolError) -> None:
        """Queue an ``error`` frame."""
        self.outbox.emit(error_frame(exc))

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Serve the connection until it closes."""
        peer = self.ws.remote_address
        try:
            if not await self._handshake():
                return
            log.info("connection session=%s peer=%s client=%r open", self.id, peer, self.client)
            async for data in self.ws:
                await self._receive(data)
        except ConnectionClosed:
            pass
        finally:
            await self._shutdown()
            log.info(
                "connection session=%s peer=%s closed code=%s",
                self.id,
                peer,
                self.ws.close_code,
            )

    async def _shutdown(self) -> None:
        tasks = [*self.turns.values(), *self.handler_tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await self.outbox.close()

    async def _close(self, code: CloseCode, reason: str) -> None:
        await self.outbox.drain()
        await self.ws.close(code, reason)

    async def _handshake(self) -> bool:
        try:
            data = await asyncio.wait_for(self.ws.recv(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await self._reject(
                ProtocolError(ErrorCode.BAD_REQUEST, "no hello in time"), CloseCode.POLICY_VIOLATION
            )
            return False
        raw: dict[str, Any] | None = None
        try:
            if isinstance(data, str):
                raise DecodeError("messages must be binary msgpack frames, not text")
            raw = decode_map(data)
            if raw["type"] != "hello":
                raise DecodeError(
                    "the first message must be 'hello'", request_id=request_id_of(raw)
                )
            hello = validate(raw, CLIENT_MESSAGES)
            assert isinstance(hello, Hello)
        except ProtocolError as exc:
            if raw is not None:
                exc.refused = refused_type(raw)
            await self._reject(exc, CloseCode.POLICY_VIOLATION)
            return False
        expected = self.config.token.get_secret_value() if self.config.token else None
        if expected is not None and not (
            hello.token is not None and hmac.compare_digest(hello.token.encode(), expected.encode())
        ):
            await self._reject(
                ProtocolError(
                    ErrorCode.UNAUTHORIZED,
                    "missing or wrong token",
                    retryable=False,
                    refused="hello",
                ),
                CloseCode.UNAUTHORIZED,
            )
            return False
        try:
            check_version(hello.protocol)
        except ProtocolError as exc:
            await self._reject(exc, CloseCode.UNSUPPORTED_PROTOCOL)
            return False
        self.client = hello.client
        self.send(
            {
                "type": "welcome",
                "protocol": PROTOCOL_VERSION,
                "session": self.id,
                "server": self.context.server_name,
                "models": self.context.catalog.ids(),
                "features": list(self.context.registry.features),
                "limits": {
                    "max_message_bytes": self.config.max_message_bytes,
                    "max_in_flight": self.config.max_in_flight,
                },
            }
        )
        return True

    async def _reject(self, exc: ProtocolError, code: CloseCode) -> None:
        self.send_error(exc)
        await self._close(code, exc.message[:100])

    # ---------------------------------------------------------------- routing

    async def _receive(self, data: bytes | str) -> None:
        """Handle one client message. Every error raised here refuses the message (it was not
        accepted), so it carries ``refused`` with the message's type when that is readable;
        every ``bad_request`` counts toward ``max_bad_messages`` in a row, any other answer
        resets the count."""
        raw: dict[str, Any] | None = None
        try:
            if isinstance(data, str):
                raise DecodeError("messages must be binary msgpack frames, not text")
            raw = decode_map(data)
            self._rate_limit(raw)
            message = validate(raw, CLIENT_MESSAGES)
            await self._dispatch(message, raw)
        except ProtocolError as exc:
            if await self._refuse(exc, raw):
                return
        self.bad_in_a_row = 0

    async def _refuse(self, exc: ProtocolError, raw: dict[str, Any] | None) -> bool:
        """Send the error refusing ``raw``; True when it was a ``bad_request`` (counted)."""
        if exc.refused is None and raw is not None:
            exc.refused = refused_type(raw)
        self.send_error(exc)
        if isinstance(exc, DecodeError):
            self.bad_in_a_row += 1
            if self.bad_in_a_row > self.config.max_bad_messages:
                await self._close(CloseCode.POLICY_VIOLATION, "too many bad messages")
            return True
        return False

    def _rate_limit(self, raw: dict[str, Any]) -> None:
        """Raise ``rate_limited`` when the message's player (or the connection) is over its rate."""
        player = raw.get("player")
        key = player if isinstance(player, str) else None
        loop = asyncio.get_running_loop()
        bucket = self.buckets.get(key)
        if bucket is None:
            rate = self.config.max_messages_per_s
            bucket = self.buckets[key] = Bucket.per_second(rate, clock=loop.time)
            if len(self.buckets) > MAX_RATE_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        wait_s = bucket.try_take(1.0, loop.time())
        if wait_s:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.config.max_messages_per_s:g} messages per second"
                + (" for this player" if key is not None else ""),
                request_id=request_id_of(raw),
                retryable=True,
                retry_after_ms=max(1, int(wait_s * 1000 + 0.999)),
            )

    async def _dispatch(self, message: Message, raw: dict[str, Any]) -> None:
        if isinstance(message, Say):
            self._start_say(message)
        elif isinstance(message, Cancel):
            self._cancel(message)
        elif isinstance(message, NpcDefine):
            self._define(message)
        elif isinstance(message, Ping):
            self.send({"type": "pong", **({"id": message.id} if message.id is not None else {})})
        elif isinstance(message, Hello):
            raise DecodeError("hello was already received")
        else:
            handler = self.context.registry.handlers.get(message.type)
            request_id = getattr(message, "id", None)
            if handler is not None and handler.cancellable and request_id is not None:
                self.track(request_id, handler(self, message))
            elif handler is not None:
                self._spawn(raw, handler(self, message))
            elif message.type.startswith("x."):
                self._spawn(raw, self._extension(raw))
            else:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_TYPE,
                    "field 'type': this message type is not enabled on this server",
                    request_id=getattr(message, "id", None),
                )

    def _spawn(self, raw: dict[str, Any], coro: Awaitable[None]) -> None:
        """Run a handler as its own task, so the connection's other messages (a ``ping``) are
        served while it works. A ``ProtocolError`` it raises refuses the message with its id,
        as if raised here; any other exception answers ``internal`` with the id."""
        request_id = request_id_of(raw)

        async def run() -> None:
            try:
                await coro
            except ProtocolError as exc:
                if exc.request_id is None:
                    exc.request_id = request_id
                await self._refuse(exc, raw)
            except Exception as exc:
                stage = f"the {raw['type']} handler"
                self.context.pipeline.failures.report(request_id or "-", "-", stage, exc)
                self.send_error(internal_error(request_id))

        task = asyncio.create_task(run())
        self.handler_tasks.add(task)
        task.add_done_callback(self.handler_tasks.discard)

    def _define(self, message: NpcDefine) -> None:
        if message.persona is not None:
            persona = message.persona
        elif message.card is not None:
            try:
                persona = persona_from_card(message.card)
            except ValueError as exc:
                raise DecodeError(f"npc.define: {exc}", request_id=message.id) from None
        else:
            raise DecodeError("npc.define needs 'persona' or 'card'", request_id=message.id)
        for spec in persona.actions:
            problem = check_schema(spec)
            if problem:
                raise DecodeError(f"npc.define: {problem}", request_id=message.id)
        self.npcs[message.npc] = persona
        self.send(ok_frame(message.id))

    def _admit(self, request_id: str | int) -> None:
        """Refuse a request whose id is in flight already, or beyond ``max_in_flight``."""
        if request_id in self.turns:
            raise DecodeError(
                "field 'id': a request with this id is already in flight", request_id=request_id
            )
        if len(self.turns) >= self.config.max_in_flight:
            raise ProtocolError(
                ErrorCode.TOO_MANY_IN_FLIGHT,
                f"at most {self.config.max_in_flight} requests may be in flight",
                request_id=request_id,
            )

    def check_text(self, kind: str, text: str, request_id: str | int | None) -> None:
        """Refuse a line longer than ``server.max_text_chars`` with ``bad_request``."""
        limit = self.config.max_text_chars
        if len(text) > limit:
            raise DecodeError(
                f"{kind}: field 'text': longer than {limit} characters", request_id=request_id
            )

    def _start_say(self, message: Say) -> None:
        self.check_text("say", message.text, message.id)
        self._admit(message.id)
        try:
            persona = self.context.api.persona(message.npc, self.npcs)
        except ProtocolError as exc:
            exc.request_id = message.id
            raise
        turn = Turn.from_say(
            message, persona, self.id, self.send if message.stream else self._send_final
        )
        self.turns[message.id] = asyncio.create_task(self._run_turn(turn))

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
            self.recent[turn.request_id] = None
            if len(self.recent) > RECENT_IDS:
                self.recent.popitem(last=False)
        if result is not None:
            await self.context.pipeline.finish(turn, result)

    def plugin_state(self, kind: type[S]) -> S:
        """This connection's instance of ``kind``, made by ``kind()`` on first use: where a
        plugin keeps per-connection state (a feature's open scenes); it ends with the
        connection."""
        found = self._plugin_state.get(kind)
        if found is None:
            found = self._plugin_state[kind] = kind()
        return cast(S, found)

    def track(self, request_id: str | int, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run a request handler as a cancellable in-flight task (used by feature handlers);
        returns the task (a ``cancel`` of ``request_id`` cancels it)."""
        try:
            self._admit(request_id)
        except ProtocolError:
            if inspect.iscoroutine(coro):
                coro.close()  # refused: it will never run
            raise

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

        task = self.turns[request_id] = asyncio.create_task(run())
        return task

    def _cancel(self, message: Cancel) -> None:
        task = self.turns.get(message.id)
        if task is not None:
            task.cancel()
        elif message.id not in self.recent:
            # a scene reply's id ("<scene.say id>/<n>") lands here too: scene replies are
            # cancelled through their exchange
            raise DecodeError(
                "field 'id': no request with this id can be cancelled", request_id=message.id
            )
        # a cancel that crosses the reply's end on the wire is not an error: nothing to do

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
