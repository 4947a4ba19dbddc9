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


class Sender(Protocol):
    """What a reply needs from its client: a way to send a message."""

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one message."""


class Reply:
    """A streaming reply: iterate for text deltas; then ``end`` holds the ``reply.end`` frame.

    Other frames for this request (``reply.start``, ``emote``, ``action``) are collected in
    ``frames`` and also available as ``emotes``/``actions``. A failure raises
    :class:`NpcBridgeError` from the iteration (after yielding any partial text).
    """

    def __init__(self, client: Sender, request_id: RequestId) -> None:
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
                if frame.get("finish") != "error":  # else the error that ends it follows
                    return
            elif kind == "error":
                self.error = NpcBridgeError.from_frame(frame)
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
