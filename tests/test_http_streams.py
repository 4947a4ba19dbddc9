"""The HTTP transport's reading side over real HTTP: long-polls held and released, cursors and
their expiry, server-sent events read like curl reads them, idle sessions expiring with their
turns cancelled, and WebSocket clients served while HTTP clients hammer the same port."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from tests.http_helpers import SMITH, EventStream, Transport
from tests.ws_helpers import eventually

SAY = {"type": "say", "id": 1, "npc": "smith", "player": "p1", "text": "[[words:12]]"}


async def test_a_long_poll_is_held_until_a_message_exists(bridge: Bridge) -> None:
    http = Transport(bridge.server.port)
    key = await http.open()
    cursor = (await http.post(key, SMITH)).json()["cursor"]
    started = time.monotonic()
    empty = (await http.poll(key, f"?cursor={cursor}&wait=0.3")).json()
    assert empty == {"cursor": cursor, "messages": []} and time.monotonic() - started >= 0.25
    held = asyncio.create_task(http.poll(key, f"?cursor={cursor}&wait=10"))
    await asyncio.sleep(0.2)
    assert not held.done()
    await http.post(key, {"type": "ping", "id": "p"})
    answer = (await asyncio.wait_for(held, 5)).json()
    assert answer == {"cursor": cursor + 1, "messages": [{"type": "pong", "id": "p"}]}
    # a turn read by polls from the cursor each answer gives, with deltas merged
    cursor = answer["cursor"]
    await http.post(key, SAY)
    seen: list[dict] = []
    for _ in range(50):
        page = (await http.poll(key, f"?cursor={cursor}&wait=5&merge=1")).json()
        seen += page["messages"]
        cursor = page["cursor"]
        if seen and seen[-1]["type"] == "reply.end":
            break
    deltas = "".join(m["text"] for m in seen if m["type"] == "reply.delta")
    assert seen[0]["type"] == "reply.start" and deltas == seen[-1]["text"]


async def test_cursors_acknowledge_and_expire(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__send_queue_bytes=4096, server__max_messages_per_s=1000
    ) as bridge:
        http = Transport(bridge.server.port)
        key = await http.open()
        for n in range(3):
            await http.post(key, {"type": "ping", "id": n})
        assert len((await http.poll(key, "?cursor=0")).json()["messages"]) == 3
        assert len((await http.poll(key, "?cursor=2")).json()["messages"]) == 1  # acknowledges 0, 1
        expired = await http.poll(key, "?cursor=1")
        assert expired.status == 410 and expired.json()["code"] == "bad_request"
        assert expired.json()["message"] == "cursor expired"
        oldest = (await http.poll(key, "?cursor=0")).json()  # 0: the oldest kept, never expired
        assert oldest == {"cursor": 3, "messages": [{"type": "pong", "id": 2}]}
        # a session nobody reads keeps at most send_queue_bytes: the oldest go first
        for n in range(400):
            await http.post(key, {"type": "ping", "id": f"ping-{n:04}-" + "x" * 20})
        assert (await http.poll(key, "?cursor=2")).status == 410
        session = next(iter(bridge.server.http_transport.sessions.values()))
        assert session.ring.held_bytes <= 4096
        newest = (await http.poll(key, f"?cursor={session.ring.first}")).json()["messages"]
        assert newest[-1]["id"] == "ping-0399-" + "x" * 20


async def test_server_sent_events(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__http_heartbeat_s=0.2) as bridge:
        http = Transport(bridge.server.port)
        key = await http.open()
        await http.post(key, SMITH)
        stream = await EventStream.open(bridge.server.port, f"/v1/sessions/{key}/events")
        try:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            first = await stream.next_event()
            assert first == {"id": "0", "event": "ok", "data": {"type": "ok", "id": "d"}}
            await http.post(key, SAY)
            events = []
            while not events or events[-1]["event"] != "reply.end":
                events.append(await stream.next_event())
            assert events[0]["event"] == "reply.start"
            assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
            text = "".join(e["data"]["text"] for e in events if e["event"] == "reply.delta")
            assert text == events[-1]["data"]["text"]
            await asyncio.sleep(0.5)  # nothing to say: heartbeats keep the stream alive
            await http.post(key, {"type": "ping", "id": "after"})
            pong = await stream.next_event()
            assert pong is not None and pong["data"] == {"type": "pong", "id": "after"}
            assert "keep-alive" in stream.comments
        finally:
            stream.close()
        # resuming with Last-Event-ID starts right after that event
        last = int(pong["id"]) - 1
        again = await EventStream.open(
            bridge.server.port, f"/v1/sessions/{key}/events", {"Last-Event-ID": str(last)}
        )
        try:
            resumed = await again.next_event()
            assert resumed is not None and resumed["id"] == pong["id"]
        finally:
            again.close()
        # a stream ends when its session does
        third = await EventStream.open(
            bridge.server.port, f"/v1/sessions/{key}/events?cursor={int(pong['id']) + 1}"
        )
        await http.call("DELETE", f"/v1/sessions/{key}")
        assert await third.next_event() is None
        third.close()
        expired = await EventStream.open(bridge.server.port, f"/v1/sessions/{key}/events")
        assert expired.status == 404
        expired.close()


async def test_idle_sessions_expire_and_their_turns_are_cancelled(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__http_session_idle_s=0.4
    ) as bridge:
        http = Transport(bridge.server.port)
        kept, idle = await http.open(), await http.open()
        for key in (kept, idle):
            await http.post(key, SMITH)
        await http.post(idle, {**SAY, "text": "[[slow]]"})
        await eventually(lambda: fake_upstream.active_streams == 1)
        # an open poll keeps a session alive past the idle time
        held = asyncio.create_task(http.poll(kept, "?cursor=1&wait=10"))
        await eventually(lambda: len(bridge.server.http_transport.sessions) == 1, timeout=5)
        assert kept in bridge.server.http_transport.sessions and not held.done()
        assert (await http.poll(idle)).status == 404
        await http.post(kept, {"type": "ping", "id": "wake"})
        assert (await held).json()["messages"] == [{"type": "pong", "id": "wake"}]
        # the expired session's turn was cancelled, and so its upstream request
        await eventually(lambda: fake_upstream.active_streams == 0, timeout=5)
        assert fake_upstream.disconnects >= 1


async def test_websocket_clients_are_served_while_http_clients_hammer(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # the per-session message rate is raised: how fast the hammering goes depends on the
    # machine, and this test is about the WebSocket client being served beside it
    async with await start_bridge(
        fake_upstream, tmp_path, server__max_messages_per_s=100000
    ) as bridge:
        http = Transport(bridge.server.port)
        keys = [await http.open() for _ in range(4)]
        answers: list[int] = []

        async def hammer(key: str) -> None:
            for n in range(60):
                answers.append((await http.post(key, {"type": "ping", "id": n})).status)
                answers.append((await http.poll(key, f"?cursor={n}")).status)

        hammering = [asyncio.create_task(hammer(key)) for key in keys]
        async with await bridge.client() as client:
            await client.define_npc("smith", {"name": "Brom"})
            for _ in range(3):
                reply = await client.say("smith", "p1", "[[words:30]]")
                assert len((await reply.text()).split()) == 30
            assert not all(task.done() for task in hammering)  # they ran side by side
        await asyncio.gather(*hammering)
        assert answers and set(answers) == {200}


async def test_a_client_that_hangs_up_releases_its_poll(bridge: Bridge) -> None:
    http = Transport(bridge.server.port)
    key = await http.open()
    session = bridge.server.http_transport.sessions[key]
    for hang_up in ("shutdown", "close"):
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.server.port)
        writer.write(
            f"GET /v1/sessions/{key}/messages?wait=30 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        await eventually(lambda: session.holders == 1)
        if hang_up == "shutdown":
            writer.write_eof()  # half-closed: the poll ends, what it has is answered
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
        await eventually(lambda: session.holders == 0, timeout=2)


async def test_merge_on_a_poll_after_a_stream_was_read_live(bridge: Bridge) -> None:
    """An event stream reading a reply live gets its deltas one by one; a poll of the same
    messages with merge=1 gets them as one delta per reply, without merge as they are kept."""
    http = Transport(bridge.server.port)
    key = await http.open()
    start = (await http.post(key, SMITH)).json()["cursor"]
    stream = await EventStream.open(bridge.server.port, f"/v1/sessions/{key}/events?cursor={start}")
    try:
        await http.post(key, {**SAY, "text": "[[words:30]] [[tps:60]]"})
        live = []
        while not live or live[-1]["event"] != "reply.end":
            live.append(await stream.next_event())
    finally:
        stream.close()
    live_deltas = [e for e in live if e["event"] == "reply.delta"]
    assert len(live_deltas) > 3
    kept = (await http.poll(key, f"?cursor={start}")).json()["messages"]
    assert [m["seq"] for m in kept if m["type"] == "reply.delta"] == list(range(len(live_deltas)))
    merged = (await http.poll(key, f"?cursor={start}&merge=1")).json()["messages"]
    assert [m["type"] for m in merged] == ["reply.start", "reply.delta", "reply.end"]
    assert merged[1]["text"] == merged[2]["text"] and len(merged[2]["text"].split()) == 30
