"""Async Python client for npcbridge (tests, benchmarks, ``npcbridge chat``, Python engines).

async with await Client.connect("ws://127.0.0.1:8765/") as client:
    await client.define_npc("smith", {"name": "Brom", "description": "A blacksmith."})
    reply = await client.say("smith", "p1", "Hello!")
    async for delta in reply:
        print(delta, end="", flush=True)
    print(reply.end["finish"])

With ``reconnect=True`` a dropped connection is dialled again (back-off 0.5 s doubling to 15 s,
with jitter), the NPCs defined with :meth:`Client.define_npc` are defined again, and requests
made meanwhile wait for the new connection. Requests in flight when it dropped fail with
``disconnected`` (the server cancelled them). ``unauthorized`` or ``unsupported_protocol`` on a
reconnect stop the client. The Lua and Godot clients behave the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from . import __version__
from .protocol import PROTOCOL_VERSION, encode, unpack

_TERMINAL = ("reply.end", "error", "ok", "pong", "memory", "quest", "barks")
#: how long the server may take to answer ``hello``
WELCOME_TIMEOUT_S = 30.0
#: refusals that no reconnect can fix
_STOPPING_CODES = ("unauthorized", "unsupported_protocol")

log = logging.getLogger("npcbridge.client")


class NpcBridgeError(Exception):
    """An ``error`` from the server (or the connection closing under a request)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after_ms: int | None = None,
        frame: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.frame = frame or {}

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> NpcBridgeError:
        """Build from an ``error`` frame."""
        return cls(
            str(frame.get("code", "internal")),
            str(frame.get("message", "")),
            retryable=bool(frame.get("retryable", False)),
            retry_after_ms=frame.get("retry_after_ms"),
            frame=frame,
        )


class Reply:
    """A streaming reply: iterate for text deltas; then ``end`` holds the ``reply.end`` frame.

    Other frames for this request (``reply.start``, ``emote``, ``action``) are collected in
    ``frames`` and also available as ``emotes``/``actions``. A failure raises
    :class:`NpcBridgeError` from the iteration (after yielding any partial text).
    """

    def __init__(self, client: Client, request_id: str | int) -> None:
        self.client = client
        self.id = request_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames: list[dict[str, Any]] = []
        self.start: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.error: NpcBridgeError | None = None
        self.emotes: list[str] = []
        self.actions: list[dict[str, Any]] = []

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[str]:
        while True:
            frame = await self.queue.get()
            kind = frame.get("type")
            self.frames.append(frame)
            if kind == "reply.delta":
                yield str(frame["text"])
            elif kind == "reply.start":
                self.start = frame
            elif kind == "emote":
                self.emotes.append(str(frame["emote"]))
            elif kind == "action":
                self.actions.append({"name": frame["name"], "args": frame["args"]})
            elif kind == "reply.end":
                self.end = frame
                if frame.get("finish") != "error":
                    self.client._forget(self.id)
                    return
            elif kind == "error":
                self.error = NpcBridgeError.from_frame(frame)
                self.client._forget(self.id)
                raise self.error

    async def text(self) -> str:
        """Wait for the whole reply; return ``reply.end.text``."""
        async for _ in self:
            pass
        assert self.end is not None
        return str(self.end["text"])

    async def cancel(self) -> None:
        """Ask the server to stop this reply (``reply.end`` with finish "cancelled" follows)."""
        await self.client.send({"type": "cancel", "id": self.id})


class SceneExchange:
    """The NPC replies to one ``scene.say``: iterate for a :class:`Reply` per speaker, in order.

    Each reply's ``start["npc"]`` names its speaker; ``done`` holds ``scene.done`` afterwards.
    """

    def __init__(self, client: Client, request_id: str | int) -> None:
        self.client = client
        self.id = request_id
        self.queue: asyncio.Queue[Reply | dict[str, Any]] = asyncio.Queue()
        self.replies: list[Reply] = []
        self.done: dict[str, Any] | None = None

    def __aiter__(self) -> AsyncIterator[Reply]:
        return self._replies()

    async def _replies(self) -> AsyncIterator[Reply]:
        while True:
            item = await self.queue.get()
            if isinstance(item, Reply):
                self.replies.append(item)
                yield item
            elif item.get("type") == "scene.done":
                self.done = item
                self.client._forget(self.id)
                return
            else:
                self.client._forget(self.id)
                raise NpcBridgeError.from_frame(item)

    async def interrupt(self) -> None:
        """Stop the NPCs of this exchange (``scene.done`` says ``interrupted``)."""
        await self.client.send({"type": "cancel", "id": self.id})


Dial = Callable[[], Awaitable[tuple[ClientConnection, dict[str, Any]]]]


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
    frame = unpack(first) if isinstance(first, bytes) else {"type": "text"}
    if frame.get("type") != "welcome":
        await ws.close()
        raise NpcBridgeError.from_frame(frame)
    return ws, frame


class Client:
    """One logical connection to an npcbridge server (dialled again on drops when
    ``reconnect`` is on; see the module docstring)."""

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
        self._pending: dict[str | int, Reply | SceneExchange | asyncio.Future[dict[str, Any]]] = {}
        self.unsolicited: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
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

    def _forget(self, request_id: str | int) -> None:
        self._pending.pop(request_id, None)

    async def _start(self, request_id: str | int, target: Any, frame: dict[str, Any]) -> None:
        """Register what collects a request's answers, then send it."""
        self._pending[request_id] = target
        try:
            await self.send(frame)
        except BaseException:
            self._forget(request_id)
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
                rid = frame.get("id")
                target = self._pending.get(rid) if isinstance(rid, (str, int)) else None
                if target is None and isinstance(rid, str):
                    target = self._scene_reply(rid, frame)
                if isinstance(target, (Reply, SceneExchange)):
                    target.queue.put_nowait(frame)
                elif target is not None:
                    self._pending.pop(frame["id"], None)
                    if not target.done():
                        target.set_result(frame)
                else:
                    self.unsolicited.put_nowait(frame)
        except ConnectionClosed:
            pass

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
        for target in list(self._pending.values()):
            if isinstance(target, (Reply, SceneExchange)):
                target.queue.put_nowait(failure)
            elif not target.done():
                target.set_result(failure)
        self._pending.clear()

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
        self._pending[request_id] = answer
        try:
            await self.ws.send(encode({**frame, "id": request_id}))
        except ConnectionClosed:
            pass  # the new connection dropped too; the read loop sees it next

    def _scene_reply(self, reply_id: str, frame: dict[str, Any]) -> Reply | None:
        """A scene reply starts under a new id: register it with its exchange."""
        exchange = self._pending.get(frame.get("parent"))  # type: ignore[arg-type]
        if frame.get("type") != "reply.start" or not isinstance(exchange, SceneExchange):
            return None
        reply = Reply(self, reply_id)
        self._pending[reply_id] = reply
        exchange.queue.put_nowait(reply)
        return reply

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its single answer; raise on ``error``."""
        request_id = frame.setdefault("id", self.next_id())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self._start(request_id, future, frame)
        answer = await future
        if answer.get("type") == "error":
            raise NpcBridgeError.from_frame(answer)
        return answer

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

    async def say(self, npc: str, player: str, text: str, **options: Any) -> Reply:
        """Send a ``say``; iterate the returned :class:`Reply` for deltas.

        ``options``: ``context``, ``urgency``, ``max_tokens``, ``temperature``, ``stream``, ``id``.
        """
        request_id = options.pop("id", None) or self.next_id()
        reply = Reply(self, request_id)
        frame = {
            "type": "say",
            "id": request_id,
            "npc": npc,
            "player": player,
            "text": text,
            **options,
        }
        await self._start(request_id, reply, frame)
        return reply

    async def ping(self) -> dict[str, Any]:
        """Round-trip a ``ping``."""
        return await self.request({"type": "ping"})

    # ---------------------------------------------------------------- memory and game features

    async def memory_add(
        self, npc: str, text: str, *, player: str | None = None, importance: int = 5
    ) -> None:
        """Store a fact the NPC should remember (about ``player``, or the world without it)."""
        frame: dict[str, Any] = {"type": "memory.add", "npc": npc, "text": text}
        frame["importance"] = importance
        if player is not None:
            frame["player"] = player
        await self.request(frame)

    async def memory_forget(self, player: str, *, npc: str | None = None) -> int:
        """Erase a player's data (for one NPC, or everywhere); return how many records went."""
        frame: dict[str, Any] = {"type": "memory.forget", "player": player}
        if npc is not None:
            frame["npc"] = npc
        return int((await self.request(frame)).get("removed", 0))

    async def memory_query(
        self, npc: str, player: str, text: str | None = None, *, limit: int = 10
    ) -> list[dict[str, Any]]:
        """What the NPC would recall for this player (and line), best first."""
        frame: dict[str, Any] = {"type": "memory.query", "npc": npc, "player": player}
        frame["limit"] = limit
        if text is not None:
            frame["text"] = text
        return list((await self.request(frame))["items"])

    async def generate_quest(
        self, theme: str, difficulty: str = "medium", **options: Any
    ) -> dict[str, Any]:
        """A validated quest (``options``: ``npc``, ``context``, ``fields``)."""
        frame = {"type": "quest.generate", "theme": theme, "difficulty": difficulty, **options}
        return dict((await self.request(frame))["quest"])

    async def generate_barks(
        self, npcs: list[str | dict[str, Any]], **options: Any
    ) -> list[dict[str, Any]]:
        """One ambient line per NPC, in order; each result has ``text`` or ``error``."""
        entries = [{"npc": n} if isinstance(n, str) else n for n in npcs]
        frame = {"type": "barks.generate", "npcs": entries, **options}
        return list((await self.request(frame))["results"])

    async def scene_start(self, scene: str, npcs: list[str], player: str, **options: Any) -> None:
        """Open (or replace) a group scene (``options``: ``context``, ``max_replies``, ...)."""
        await self.request(
            {"type": "scene.start", "scene": scene, "npcs": npcs, "player": player, **options}
        )

    async def scene_say(self, scene: str, text: str, **options: Any) -> SceneExchange:
        """The player speaks in a scene; iterate the result for each NPC's streaming reply."""
        request_id = options.pop("id", None) or self.next_id()
        exchange = SceneExchange(self, request_id)
        frame = {"type": "scene.say", "id": request_id, "scene": scene, "text": text, **options}
        await self._start(request_id, exchange, frame)
        return exchange

    async def scene_update(self, kind: str, scene: str, **fields: Any) -> None:
        """``scene.add``, ``scene.remove``, ``scene.interrupt`` or ``scene.end`` (kind without
        the ``scene.`` prefix), e.g. ``await client.scene_update("add", "tavern", npc="bard")``."""
        await self.request({"type": f"scene.{kind}", "scene": scene, **fields})
