"""The asyncio connection: dial, say hello, pump frames through the router, reconnect."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from .. import __version__
from ..protocol import PROTOCOL_VERSION, DecodeError, encode, unpack
from .errors import NpcBridgeError
from .requests import Requests
from .routing import RequestId, Router
from .state import StateView
from .streams import EventReactions, Reply, SceneExchange
from .voice import VoiceRequests

#: how long the server may take to answer ``hello``
WELCOME_TIMEOUT_S = 30.0
#: refusals that no reconnect can fix
_STOPPING_CODES = ("unauthorized", "unsupported_protocol")

log = logging.getLogger("npcbridge.client")

Dial = Callable[[], Awaitable[tuple[ClientConnection, dict[str, Any]]]]
Target = Reply | SceneExchange | asyncio.Future[dict[str, Any]]


async def open_session(
    url: str, token: str | None, client: str, ws_options: dict[str, Any]
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect and say hello; return the connection and the ``welcome``. Raises
    :class:`NpcBridgeError` when the server refuses the ``hello``."""
    ws = await connect(url, max_size=None, compression=None, **ws_options)
    hello: dict[str, Any] = {"type": "hello", "protocol": PROTOCOL_VERSION, "client": client}
    if token is not None:
        hello["token"] = token
    await ws.send(encode(hello))
    try:
        first = await asyncio.wait_for(ws.recv(), WELCOME_TIMEOUT_S)
    except BaseException:
        await ws.close()
        raise
    try:
        frame = unpack(first) if isinstance(first, bytes) else None
    except DecodeError:
        frame = None
    if isinstance(frame, dict) and frame.get("type") == "welcome":
        return ws, frame
    await ws.close()
    if isinstance(frame, dict) and frame.get("type") == "error":
        raise NpcBridgeError.from_frame(frame)
    raise NpcBridgeError("bad_handshake", "the server did not answer hello with welcome")


class Client(Requests, StateView, VoiceRequests):
    """One logical connection to an npcbridge server (dialled again on drops when
    ``reconnect`` is on; see the package docstring).

    Frames that belong to no request (see :class:`~npcbridge.client.routing.Router`) go to
    ``unsolicited``; an ``error`` among them is also logged as a warning."""

    def __init__(
        self,
        ws: ClientConnection,
        welcome: dict[str, Any],
        *,
        dial: Dial | None = None,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 15.0,
    ) -> None:
        self.ws = ws
        self.welcome = welcome
        #: how to open a new session; None: the client does not reconnect
        self.dial = dial
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        #: completed reconnects
        self.reconnects = 0
        #: the refusal that stopped reconnecting (``unauthorized``, ``unsupported_protocol``)
        self.stopped: NpcBridgeError | None = None
        self._live = True
        self._closing = False
        self._changed = asyncio.Event()
        self._npcs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._router = Router()
        self._targets: dict[RequestId, Target] = {}
        self.unsolicited: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        StateView.__init__(self)
        #: the player of each reply in flight (reply.end.state is about them)
        self._players: dict[RequestId, str] = {}
        self._reader = asyncio.create_task(self._run())

    @classmethod
    async def connect(
        cls,
        url: str = "ws://127.0.0.1:8765/",
        *,
        token: str | None = None,
        client: str = f"python npcbridge-py/{__version__}",
        reconnect: bool = False,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 15.0,
        **ws_options: Any,
    ) -> Client:
        """Connect and say hello; raises :class:`NpcBridgeError` when the server refuses.

        ``reconnect`` is off by default: this client is also the one tests and tools use, where
        a dropped connection must show. A game engine should turn it on."""

        async def dial() -> tuple[ClientConnection, dict[str, Any]]:
            return await open_session(url, token, client, ws_options)

        ws, welcome = await dial()
        return cls(
            ws,
            welcome,
            dial=dial if reconnect else None,
            reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True while a session with the server is open."""
        return self._live

    async def close(self) -> None:
        """Close the connection; requests still waiting fail with ``closed``."""
        self._closing = True
        self._notify()
        await self.ws.close()
        self._reader.cancel()

    async def wait_connected(self) -> None:
        """Return once a session is open (at once, or after the next reconnect); raise
        :class:`NpcBridgeError` when the client was closed, stopped, or does not reconnect."""
        while not self._live:
            if self._closing:
                raise NpcBridgeError("closed", "the client was closed")
            if self.stopped is not None:
                raise self.stopped
            if self.dial is None:
                raise NpcBridgeError("disconnected", "the connection ended", retryable=True)
            await self._changed.wait()

    def next_id(self) -> int:
        """A fresh request id."""
        return next(self._ids)

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one message (a dict, encoded canonically). With ``reconnect`` on, waits for the
        connection while it is being dialled again."""
        await self.send_raw(encode(frame))

    async def send_raw(self, data: bytes | str) -> None:
        """Send raw bytes or text (for tests of bad input)."""
        if self.dial is not None:
            await self.wait_connected()
            try:
                await self.ws.send(data)
            except ConnectionClosed:
                raise NpcBridgeError(
                    "disconnected", "the connection ended before the message left", retryable=True
                ) from None
        else:
            await self.ws.send(data)

    def _track(self, request_id: RequestId, target: Target, sent_type: str) -> None:
        self._router.open(request_id, sent_type)
        self._targets[request_id] = target

    async def _start(self, request_id: RequestId, target: Target, frame: dict[str, Any]) -> None:
        """Register what collects a request's answers, then send it."""
        self._track(request_id, target, str(frame["type"]))
        try:
            await self.send(frame)
        except BaseException:
            self._router.forget(request_id)
            self._targets.pop(request_id, None)
            raise

    def _notify(self) -> None:
        """Wake everything waiting in :meth:`wait_connected`."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _run(self) -> None:
        try:
            while True:
                await self._read()
                self._live = False
                self._fail_pending()
                self._notify()
                if self._closing or self.dial is None or not await self._redial():
                    return
        finally:
            self._live = False
            self._fail_pending()
            self._notify()

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                frame = unpack(data) if isinstance(data, bytes) else {"type": "text", "text": data}
                self._deliver(frame)
        except ConnectionClosed:
            pass

    def _deliver(self, frame: dict[str, Any]) -> None:
        """Hand one frame to the request the router names (or to ``unsolicited``)."""
        routed = self._router.feed(frame)
        if frame.get("type") in ("state", "reply.end"):
            self.seen(
                frame, self._players.get(routed.request) if routed.request is not None else None
            )
        if routed.ended is not None:
            self._players.pop(routed.request, None)  # type: ignore[arg-type]
        if routed.request is None:
            if frame.get("type") == "error":
                log.warning(
                    "npcbridge error for no waiting request (id %r): %s: %s",
                    frame.get("id"),
                    frame.get("code"),
                    frame.get("message"),
                )
            self.unsolicited.put_nowait(frame)
            return
        if routed.parent is not None:
            reply = Reply(self, routed.request)
            self._targets[routed.request] = reply
            exchange = self._targets[routed.parent]
            if isinstance(exchange, SceneExchange):  # else sent with request(): scene.done only
                exchange.queue.put_nowait(reply)
        target = self._targets[routed.request]
        if routed.ended is not None:
            del self._targets[routed.request]
        if isinstance(target, (Reply, SceneExchange)):
            target.queue.put_nowait(frame)
        elif routed.ended is not None and not target.done():
            target.set_result(frame)

    def _fail_pending(self) -> None:
        """Every request still waiting ends: ``closed`` after :meth:`close`, else
        ``disconnected`` (retryable: the server cancelled what it was doing)."""
        failure: dict[str, Any]
        if self._closing:
            failure = {"type": "error", "code": "closed", "message": "the client was closed"}
        else:
            failure = {
                "type": "error",
                "code": "disconnected",
                "message": "the connection ended while the request was in flight",
                "retryable": True,
            }
        self._router.drop_all()
        self._players.clear()
        for target in self._targets.values():
            if isinstance(target, (Reply, SceneExchange)):
                target.queue.put_nowait(failure)
            elif not target.done():
                target.set_result(failure)
        self._targets.clear()

    async def _redial(self) -> bool:
        """Dial until a session opens (True) or the client is closed or refused (False)."""
        assert self.dial is not None
        delay = self.reconnect_initial_s
        while not self._closing:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self.reconnect_max_s)
            try:
                ws, welcome = await self.dial()
            except NpcBridgeError as exc:
                if exc.code in _STOPPING_CODES:
                    log.error("npcbridge refused the reconnect, giving up: %s", exc)
                    self.stopped = exc
                    return False
                log.info("npcbridge reconnect refused (%s); trying again", exc)
                continue
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.info("npcbridge reconnect failed (%s); trying again", exc)
                continue
            if self._closing:
                await ws.close()
                return False
            self.ws, self.welcome = ws, welcome
            # defined again before any waiting request is sent: the server keeps order
            for frame in self._npcs.values():
                await self._define_again(frame)
            self._live = True
            self.reconnects += 1
            self._notify()
            return True
        return False

    async def _define_again(self, frame: dict[str, Any]) -> None:
        request_id = self.next_id()
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def check(done: asyncio.Future[dict[str, Any]]) -> None:
            if not done.cancelled() and done.result().get("type") == "error":
                log.error("defining npc %r again failed: %s", frame["npc"], done.result())

        answer.add_done_callback(check)
        self._track(request_id, answer, "npc.define")
        try:
            await self.ws.send(encode({**frame, "id": request_id}))
        except ConnectionClosed:
            pass  # the new connection dropped too; the read loop sees it next

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its single answer; raise on ``error``."""
        request_id = frame.setdefault("id", self.next_id())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self._start(request_id, future, frame)
        answer = await future
        if answer.get("type") == "error":
            raise NpcBridgeError.from_frame(answer)
        return answer

    async def say(self, npc: str, player: str, text: str, **options: Any) -> Reply:
        """Send a ``say``; iterate the returned :class:`Reply` for deltas.

        ``options``: ``context``, ``urgency``, ``max_tokens``, ``temperature``, ``stream``,
        ``voice``, ``id``.
        """
        frame = {"type": "say", "npc": npc, "player": player, "text": text, **options}
        return await self._start_reply(frame)

    async def _start_reply(self, frame: dict[str, Any]) -> Reply:
        """Send a request answered by a reply (``say``, speech); ``frame["id"]`` is set when
        absent."""
        request_id = frame.pop("id", None) or self.next_id()
        reply = Reply(self, request_id)
        self._players[request_id] = frame["player"]
        try:
            await self._start(request_id, reply, {**frame, "id": request_id})
        except BaseException:
            self._players.pop(request_id, None)
            raise
        return reply

    async def world_event(self, text: str, **options: Any) -> EventReactions:
        """Tell NPCs what happened (``options``: ``npc``, ``npcs`` or ``scene``, ``player``,
        ``witnesses``, ``importance``, ``effects``, ``react``...); iterate the result for each
        reaction's streaming :class:`Reply`, then ``done`` holds the ``ok``. A refused event
        raises :class:`NpcBridgeError` from the iteration."""
        request_id = options.pop("id", None) or self.next_id()
        reactions = EventReactions(self, request_id)
        frame = {"type": "world.event", "id": request_id, "text": text, **options}
        await self._start(request_id, reactions, frame)
        return reactions

    async def scene_say(self, scene: str, text: str, **options: Any) -> SceneExchange:
        """The player speaks in a scene; iterate the result for each NPC's streaming reply."""
        request_id = options.pop("id", None) or self.next_id()
        exchange = SceneExchange(self, request_id)
        frame = {"type": "scene.say", "id": request_id, "scene": scene, "text": text, **options}
        await self._start(request_id, exchange, frame)
        return exchange

    async def define_npc(
        self, npc: str, persona: dict[str, Any] | None = None, *, card: dict[str, Any] | None = None
    ) -> None:
        """Define (or replace) an NPC for this connection (and again after each reconnect)."""
        frame: dict[str, Any] = {"type": "npc.define", "npc": npc}
        if persona is not None:
            frame["persona"] = persona
        if card is not None:
            frame["card"] = card
        await self.request(dict(frame))
        self._npcs[npc] = frame
