"""The Python client's routing against the shared flow vectors (tests/vectors/flows.json).

Each flow is checked twice: on the sans-I/O :class:`Router` alone, and through the asyncio
:class:`Client` over a scripted connection (no socket), so the client is shown to only pump.
Rules: docs/protocol.md, "Talking", "Scenes" and "Errors" (refusals).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from npcbridge.client import Client, NpcBridgeError, Reply, Router, SceneExchange
from npcbridge.protocol import encode

FLOWS = json.loads((Path(__file__).parent / "vectors" / "flows.json").read_text())["flows"]


def _id(key: str) -> str | int:
    """flows.json keys: digits only stand for an integer id."""
    return int(key) if key.isdigit() else key


def _outcome(ends: str, frame: dict[str, Any], text: str | None, deltas: str) -> dict[str, Any]:
    out: dict[str, Any] = {"ends": ends}
    if ends == "reply":
        out |= {"finish": frame["finish"], "text": text, "deltas": deltas}
    elif ends == "error":
        out["code"] = frame["code"]
        if text is not None:
            out["text"] = text
    else:
        out["answer_type"] = frame["type"]
    return out


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f["name"])
def test_router_follows_the_flow(flow: dict[str, Any]) -> None:
    router = Router()
    for key, sent in flow["requests"].items():
        router.open(_id(key), sent)
    got: dict[str, Any] = {}
    stray = []
    for index, frame in enumerate(flow["frames"]):
        routed = router.feed(frame)
        if routed.request is None:
            stray.append(index)
        elif routed.ended is not None:
            e = routed.ended
            got[str(routed.request)] = {"at": index, **_outcome(e.ends, e.frame, e.text, e.deltas)}
    for rid in router.pending():
        got[str(rid)] = {"ends": "open"}
    assert got == flow["expect"]
    assert stray == flow["stray"]


class ScriptedConnection:
    """Stands in for the WebSocket: yields the flow's frames once released, then stays open."""

    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = [encode(f) for f in frames]
        self.sent: list[bytes | str] = []
        self.release = asyncio.Event()
        self.drained = asyncio.Event()
        self.closed = asyncio.Event()

    async def send(self, data: bytes | str) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed.set()

    def __aiter__(self) -> ScriptedConnection:
        return self

    async def __anext__(self) -> bytes:
        await self.release.wait()
        if self.frames:
            return self.frames.pop(0)
        self.drained.set()
        await self.closed.wait()
        raise StopAsyncIteration


async def _reply_outcome(reply: Reply) -> dict[str, Any]:
    deltas = ""
    try:
        async for piece in reply:
            deltas += piece
    except NpcBridgeError as exc:
        partial = reply.end["text"] if reply.end is not None else None
        return _outcome("error", exc.frame, partial, deltas)
    assert reply.end is not None
    return _outcome("reply", reply.end, reply.end["text"], deltas)


async def _request_outcome(client: Client, sent: str, rid: str | int) -> dict[str, Any]:
    try:
        answer = await client.request({"type": sent, "id": rid})
    except NpcBridgeError as exc:
        return _outcome("error", exc.frame, None, "")
    return _outcome("answer", answer, None, "")


async def _scene_outcomes(exchange: SceneExchange, out: dict[str, Any]) -> dict[str, Any]:
    try:
        async for reply in exchange:
            out[str(reply.id)] = await _reply_outcome(reply)
    except NpcBridgeError as exc:
        return _outcome("error", exc.frame, None, "")
    assert exchange.done is not None
    return _outcome("answer", exchange.done, None, "")


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f["name"])
async def test_client_follows_the_flow(flow: dict[str, Any]) -> None:
    conn = ScriptedConnection(flow["frames"])
    client = Client(conn, {"type": "welcome"})  # type: ignore[arg-type]
    got: dict[str, Any] = {}
    tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}
    for key, sent in flow["requests"].items():
        rid = _id(key)
        if sent == "say":
            reply = await client.say("blacksmith", "p1", "Hello", id=rid)
            tasks[key] = asyncio.create_task(_reply_outcome(reply))
        elif sent == "speech":
            reply = await client.speech("blacksmith", "p1", b"RIFF", id=rid)
            tasks[key] = asyncio.create_task(_reply_outcome(reply))
        elif sent == "speech.start":
            upload = await client.start_speech("blacksmith", "p1", id=rid)
            tasks[key] = asyncio.create_task(_reply_outcome(upload.reply))
        elif sent == "scene.say":
            exchange = await client.scene_say("tavern", "Hello", id=rid)
            tasks[key] = asyncio.create_task(_scene_outcomes(exchange, got))
        elif sent == "world.event":
            reactions = await client.world_event("A dragon!", npc="guard", id=rid)
            tasks[key] = asyncio.create_task(_scene_outcomes(reactions, got))
        else:
            tasks[key] = asyncio.create_task(_request_outcome(client, sent, rid))
    await asyncio.sleep(0)  # the single-answer requests are sent
    conn.release.set()
    await asyncio.wait_for(conn.drained.wait(), 5)
    for _ in range(5):
        await asyncio.sleep(0)  # let every consumer take what it was given
    for key, task in tasks.items():
        got[key] = task.result() if task.done() else {"ends": "open"}
    expected = {k: {f: v for f, v in e.items() if f != "at"} for k, e in flow["expect"].items()}
    strays = [flow["frames"][i] for i in flow["stray"]]
    unsolicited = [client.unsolicited.get_nowait() for _ in range(client.unsolicited.qsize())]
    await client.close()
    assert got == expected
    assert unsolicited == strays


async def test_a_scene_say_sent_with_request_answers_scene_done() -> None:
    flow = next(f for f in FLOWS if f["name"].startswith("scene exchange"))
    conn = ScriptedConnection(flow["frames"])
    client = Client(conn, {"type": "welcome"})  # type: ignore[arg-type]
    answer = asyncio.create_task(client.request({"type": "scene.say", "id": "s-1"}))
    await asyncio.sleep(0)
    conn.release.set()
    done = await asyncio.wait_for(answer, 5)
    assert done["type"] == "scene.done" and not client._reader.done()
    await client.close()
