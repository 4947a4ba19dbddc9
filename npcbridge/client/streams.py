"""What a streaming request hands back: a :class:`Reply`, or a :class:`SceneExchange`.

The client's read loop puts the frames the router gave each request into its queue; these
classes only interpret them (the router already decided which frame ends the request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

from .errors import NpcBridgeError
from .routing import RequestId
from .voice import AudioFrame


class Sender(Protocol):
    """What a reply needs from its client: a way to send a message."""

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one message."""


class _Fanout:
    """A reply's inbox: each frame updates the reply at once and goes to both of its streams
    (text and audio), so either may be iterated alone, or both at the same time."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.text: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.audio: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def put_nowait(self, frame: dict[str, Any]) -> None:
        """Take one frame of the reply."""
        self.reply._take(frame)
        self.text.put_nowait(frame)
        self.audio.put_nowait(frame)


class Reply:
    """A streaming reply: iterate for text deltas; then ``end`` holds the ``reply.end`` frame.

    Other frames for this request (``reply.start``, ``emote``, ``action``, ``transcript``,
    ``reply.audio``) are collected in ``frames`` and also available as ``emotes``/``actions``/
    ``transcript``. :meth:`audio` iterates the reply's audio frames instead of its text (both
    may run at once). A failure raises :class:`NpcBridgeError` from the iteration (after
    yielding any partial text).
    """

    def __init__(self, client: Sender, request_id: RequestId) -> None:
        self.client = client
        self.id = request_id
        self.queue = _Fanout(self)
        self.frames: list[dict[str, Any]] = []
        self.start: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.error: NpcBridgeError | None = None
        self.emotes: list[str] = []
        self.actions: list[dict[str, Any]] = []
        #: what the server heard (a speech request's ``transcript``)
        self.transcript: str | None = None

    def _take(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        self.frames.append(frame)
        if kind == "reply.start":
            self.start = frame
        elif kind == "emote":
            self.emotes.append(str(frame["emote"]))
        elif kind == "action":
            self.actions.append({"name": frame["name"], "args": frame["args"]})
        elif kind == "transcript":
            self.transcript = str(frame["text"])
        elif kind == "reply.end":
            self.end = frame
        elif kind == "error":
            self.error = NpcBridgeError.from_frame(frame)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[str]:
        async for frame in self._stream(self.queue.text):
            if frame.get("type") == "reply.delta":
                yield str(frame["text"])

    async def audio(self) -> AsyncIterator[AudioFrame]:
        """The reply's audio, one :class:`AudioFrame` per ``reply.audio`` frame, in order;
        ends with the reply (raises its error like the text iteration)."""
        async for frame in self._stream(self.queue.audio):
            if frame.get("type") == "reply.audio":
                yield AudioFrame.from_frame(frame)

    async def _stream(self, queue: asyncio.Queue[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        while True:
            frame = await queue.get()
            kind = frame.get("type")
            if kind == "error":
                raise NpcBridgeError.from_frame(frame)
            yield frame
            if kind == "reply.end" and frame.get("finish") != "error":
                return  # finish "error": the error that ends the reply follows

    async def text(self) -> str:
        """Wait for the whole reply; return ``reply.end.text``."""
        async for _ in self:
            pass
        assert self.end is not None
        return str(self.end["text"])

    async def cancel(self, *, barge_in: bool = False) -> None:
        """Ask the server to stop this reply (``reply.end`` with finish "cancelled" follows).
        ``barge_in``: the player spoke over the NPC; the reply's text becomes what was voiced."""
        frame: dict[str, Any] = {"type": "cancel", "id": self.id}
        if barge_in:
            frame["barge_in"] = True
        await self.client.send(frame)


class SceneExchange:
    """The NPC replies to one ``scene.say``: iterate for a :class:`Reply` per speaker, in order.

    Each reply's ``start["npc"]`` names its speaker; ``done`` holds ``scene.done`` afterwards.
    """

    #: the frame that ends the exchange
    ends = "scene.done"

    def __init__(self, client: Sender, request_id: RequestId) -> None:
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
            elif item.get("type") == self.ends:
                self.done = item
                return
            elif item.get("type") == "error":
                raise NpcBridgeError.from_frame(item)

    async def interrupt(self) -> None:
        """Stop the NPCs of this exchange (``scene.done`` says ``interrupted``)."""
        await self.client.send({"type": "cancel", "id": self.id})


class EventReactions(SceneExchange):
    """The reactions to one ``world.event``: iterate for a :class:`Reply` per reacting NPC;
    ``done`` holds the ``ok`` afterwards (``npcs`` told, ``reactions``)."""

    ends = "ok"
