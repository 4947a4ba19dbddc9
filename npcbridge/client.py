"""Async Python client for npcbridge (tests, benchmarks, ``npcbridge chat``, Python engines).

async with await Client.connect("ws://127.0.0.1:8765/") as client:
    await client.define_npc("smith", {"name": "Brom", "description": "A blacksmith."})
    reply = await client.say("smith", "p1", "Hello!")
    async for delta in reply:
        print(delta, end="", flush=True)
    print(reply.end["finish"])
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from . import __version__
from .protocol import PROTOCOL_VERSION, encode, unpack

_TERMINAL = ("reply.end", "error", "ok", "pong", "memory", "quest", "barks")


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


class Client:
    """One connection to an npcbridge server."""

    def __init__(self, ws: ClientConnection, welcome: dict[str, Any]) -> None:
        self.ws = ws
        self.welcome = welcome
        self._ids = itertools.count(1)
        self._pending: dict[str | int, Reply | SceneExchange | asyncio.Future[dict[str, Any]]] = {}
        self.unsolicited: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls,
        url: str = "ws://127.0.0.1:8765/",
        *,
        token: str | None = None,
        client: str = f"python npcbridge-py/{__version__}",
        **ws_options: Any,
    ) -> Client:
        """Connect and say hello; raises :class:`NpcBridgeError` when the server refuses."""
        ws = await connect(url, max_size=None, compression=None, **ws_options)
        hello: dict[str, Any] = {"type": "hello", "protocol": PROTOCOL_VERSION, "client": client}
        if token is not None:
            hello["token"] = token
        await ws.send(encode(hello))
        first = await ws.recv()
        frame = unpack(first) if isinstance(first, bytes) else {"type": "text"}
        if frame.get("type") != "welcome":
            await ws.close()
            raise NpcBridgeError.from_frame(frame)
        return cls(ws, frame)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection."""
        await self.ws.close()
        self._reader.cancel()

    def next_id(self) -> int:
        """A fresh request id."""
        return next(self._ids)

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one message (a dict, encoded canonically)."""
        await self.ws.send(encode(frame))

    async def send_raw(self, data: bytes | str) -> None:
        """Send raw bytes or text (for tests of bad input)."""
        await self.ws.send(data)

    def _forget(self, request_id: str | int) -> None:
        self._pending.pop(request_id, None)

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
        finally:
            closed = {"type": "error", "code": "closed", "message": "connection closed"}
            for target in list(self._pending.values()):
                if isinstance(target, (Reply, SceneExchange)):
                    target.queue.put_nowait(closed)
                elif not target.done():
                    target.set_result(closed)
            self._pending.clear()

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
        self._pending[request_id] = future
        await self.send(frame)
        answer = await future
        if answer.get("type") == "error":
            raise NpcBridgeError.from_frame(answer)
        return answer

    async def define_npc(
        self, npc: str, persona: dict[str, Any] | None = None, *, card: dict[str, Any] | None = None
    ) -> None:
        """Define (or replace) an NPC for this connection."""
        frame: dict[str, Any] = {"type": "npc.define", "npc": npc}
        if persona is not None:
            frame["persona"] = persona
        if card is not None:
            frame["card"] = card
        await self.request(frame)

    async def say(self, npc: str, player: str, text: str, **options: Any) -> Reply:
        """Send a ``say``; iterate the returned :class:`Reply` for deltas.

        ``options``: ``context``, ``urgency``, ``max_tokens``, ``temperature``, ``stream``, ``id``.
        """
        request_id = options.pop("id", None) or self.next_id()
        reply = Reply(self, request_id)
        self._pending[request_id] = reply
        frame = {
            "type": "say",
            "id": request_id,
            "npc": npc,
            "player": player,
            "text": text,
            **options,
        }
        await self.send(frame)
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
        self._pending[request_id] = exchange
        await self.send(
            {"type": "scene.say", "id": request_id, "scene": scene, "text": text, **options}
        )
        return exchange

    async def scene_update(self, kind: str, scene: str, **fields: Any) -> None:
        """``scene.add``, ``scene.remove``, ``scene.interrupt`` or ``scene.end`` (kind without
        the ``scene.`` prefix), e.g. ``await client.scene_update("add", "tavern", npc="bard")``."""
        await self.request({"type": f"scene.{kind}", "scene": scene, **fields})
