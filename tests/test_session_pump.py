"""The asyncio session around the connection state machine, on an in-memory socket (no network):
it sends what the machine answers, closes when told, runs handlers as tasks and frees their ids
when they end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from npcbridge.config import ServerConfig
from npcbridge.plugin.registry import Registry
from npcbridge.protocol import DecodeError, ErrorCode, Persona, ProtocolError, pack, unpack
from npcbridge.server.context import ServerContext
from npcbridge.server.session import Session

HELLO = {"type": "hello", "protocol": 1, "client": "test"}


class MemorySocket:
    """What the session and its outbox use of a WebSocket connection, in memory."""

    remote_address = ("127.0.0.1", 1)

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.state = State.OPEN
        self.close_code: int | None = None
        self.close_reason = ""

    def feed(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            self.incoming.put_nowait(pack(message))

    async def recv(self) -> bytes:
        data = await self.incoming.get()
        if data is None:
            raise ConnectionClosed(None, None)
        return data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (data := await self.incoming.get()) is not None:
            yield data

    async def send(self, message: bytes) -> None:
        self.sent.append(unpack(message))

    def send_now(self, data: bytes) -> bool:
        self.sent.append(unpack(data))
        return True

    def write_buffer_size(self) -> int:
        return 0

    async def close(self, code: int, reason: str) -> None:
        self.state, self.close_code, self.close_reason = State.CLOSED, code, reason
        self.incoming.put_nowait(None)

    def abort(self) -> None:
        pass


class _Catalog:
    def ids(self) -> list[str]:
        return ["m"]


class _Api:
    def persona(self, npc: str, defined: Mapping[str, Persona] | None = None) -> Persona:
        if npc not in (defined or {}):
            raise ProtocolError(ErrorCode.UNKNOWN_NPC, "field 'npc': unknown npc; define it first")
        return (defined or {})[npc]


def session(registry: Registry | None = None) -> tuple[Session, MemorySocket]:
    context = ServerContext(
        settings=ServerConfig(),
        server_name="npcbridge/test",
        offline=True,
        catalog=cast(Any, _Catalog()),
        registry=registry or Registry(),
        pipeline=cast(Any, None),
        api=cast(Any, _Api()),
    )
    ws = MemorySocket()
    return Session(context, cast(Any, ws)), ws


async def until(ws: MemorySocket, count: int) -> list[dict[str, Any]]:
    for _ in range(500):
        if len(ws.sent) >= count:
            break
        await asyncio.sleep(0.002)
    return ws.sent


async def test_no_hello_before_the_deadline_is_answered_and_closed() -> None:
    s, ws = session()
    s.machine.hello_deadline = s.loop.time() + 0.05  # the machine's deadline, not a clock
    await asyncio.wait_for(s.run(), 5)
    assert ws.sent == [
        {"type": "error", "code": "bad_request", "message": "no hello in time", "retryable": False}
    ]
    assert (ws.close_code, ws.close_reason) == (1008, "no hello in time")


async def test_answers_go_out_in_order_and_a_handlers_refusal_is_a_refusal() -> None:
    registry = Registry()

    async def refuse(session: Any, message: Any) -> None:
        raise DecodeError("memory.add: field 'text': too long")

    registry.add_handler("memory.add", refuse)
    s, ws = session(registry)
    ws.feed(
        HELLO,
        {"type": "ping", "id": 1},
        {"type": "npc.define", "id": 2, "npc": "guard", "persona": {"name": "Hild"}},
        {"type": "memory.add", "id": 3, "npc": "guard", "text": "x"},
    )
    runner = asyncio.create_task(s.run())
    sent = await until(ws, 4)
    welcome, pong, ok, refusal = sent[:4]
    assert welcome["type"] == "welcome" and welcome["session"] == s.id
    assert pong == {"type": "pong", "id": 1} and ok == {"type": "ok", "id": 2}
    assert refusal["id"] == 3 and refusal["refused"] == "memory.add"
    assert s.npcs["guard"].name == "Hild" and s.client == "test"
    await ws.close(1000, "")
    await asyncio.wait_for(runner, 5)


async def test_a_cancelled_tracked_handler_frees_its_id() -> None:
    registry = Registry()
    started = asyncio.Event()

    async def forever(session: Any, message: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    registry.add_handler("quest.generate", forever, cancellable=True)
    s, ws = session(registry)
    ws.feed(HELLO, {"type": "quest.generate", "id": "q", "theme": "t"})
    runner = asyncio.create_task(s.run())
    await asyncio.wait_for(started.wait(), 5)
    assert "q" in s.machine.in_flight and "q" in s.turns
    ws.feed({"type": "cancel", "id": "q"})
    for _ in range(500):
        if not s.turns:
            break
        await asyncio.sleep(0.002)
    assert not s.turns and not s.machine.in_flight
    await ws.close(1000, "")
    await asyncio.wait_for(runner, 5)
