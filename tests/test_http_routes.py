"""Plain HTTP on the WebSocket port: who may read ``/healthz`` details and admin routes, plugin
routes of every kind, and the HTTP/1.1 connection itself (keep-alive, pipelining, chunked
bodies, limits), beside WebSocket clients on the same port."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from npcbridge.plugin.registry import RegistrationError, Registry
from npcbridge.server import http
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from tests.http_helpers import exchange, request, split_answers

ECHO = ("tests.sample_plugins:Echo",)


async def test_loopback_peers_see_details_and_metrics(bridge: Bridge) -> None:
    port = bridge.server.port
    answer = await request(port, "GET", "/healthz")  # on the WebSocket port
    details = answer.json()
    assert answer.status == 200 and details["status"] == "ok" and details["offline"] is False
    assert answer.headers["server"].startswith("npcbridge/")
    answer = await request(port, "GET", "/metrics")
    assert answer.status == 200 and b"npcbridge_" in answer.body
    assert answer.headers["content-type"].startswith("text/plain")


async def test_other_peers_need_the_token(
    fake_upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests only reach the server over loopback: the peer check is what is replaced
    monkeypatch.setattr(http, "is_loopback_peer", lambda peer: False)
    async with await start_bridge(fake_upstream, tmp_path, server__token="s3cret") as bridge:
        port = bridge.server.port
        answer = await request(port, "GET", "/healthz")
        assert (answer.status, answer.body) == (200, b'{"status": "ok"}\n')
        answer = await request(port, "GET", "/healthz", headers={"Authorization": "Bearer s3cret"})
        assert answer.status == 200 and answer.json()["server"].startswith("npcbridge/")
        for token in (None, "wrong", ""):
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            answer = await request(port, "GET", "/metrics", headers=headers)
            assert answer.status == 401 and b"npcbridge_" not in answer.body
            assert answer.headers["www-authenticate"] == "Bearer"
        answer = await request(port, "GET", "/metrics", headers={"Authorization": "Bearer s3cret"})
        assert answer.status == 200 and b"npcbridge_" in answer.body


async def test_admin_routes_refuse_other_origins(bridge: Bridge) -> None:
    port = bridge.server.port
    own = f"http://127.0.0.1:{port}"
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}"):
        answer = await request(port, "GET", "/metrics", headers={"Origin": origin})
        assert answer.status == 403 and b"npcbridge_" not in answer.body, origin
    answer = await request(port, "GET", "/metrics", headers={"Origin": own})
    assert answer.status == 200 and b"npcbridge_" in answer.body
    # /healthz is no admin route: a page of any origin may probe it
    answer = await request(port, "GET", "/healthz", headers={"Origin": "http://evil.example"})
    assert answer.status == 200


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1"):
        assert http.is_loopback_peer(host), host
    for host in ("10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "not an address", ""):
        assert not http.is_loopback_peer(host), host


async def test_plugin_routes(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(fake_upstream, tmp_path, plugins=ECHO) as bridge:
        port = bridge.server.port
        answer = await request(
            port, "POST", "/echo?a=1&a=2&b=", b"hello", headers={"X-Thing": "yes"}
        )
        assert answer.status == 200
        assert answer.json() == {
            "method": "POST",
            "path": "/echo",
            "query": {"a": "2", "b": ""},
            "body": "hello",
            "x": "yes",
            "trusted": True,
        }
        answer = await request(port, "DELETE", "/echo")
        assert answer.status == 405 and answer.headers["allow"] == "GET, HEAD, POST"
        answer = await request(port, "GET", "/files/a/b.txt")
        assert (answer.status, answer.body, answer.headers["x-kind"]) == (
            200,
            b"/files/a/b.txt",
            "file",
        )
        assert (await request(port, "GET", "/files/special")).body == b"special"
        head_request = "HEAD /files/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        head = await exchange(port, head_request.encode(), answers=2)  # read to the close
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 8" in head.lower()
        assert head.endswith(b"\r\n\r\n")  # no body after a HEAD
        assert (await request(port, "GET", "/files")).status == 404
        assert (await request(port, "GET", "/nowhere")).status == 404
        secret = await request(port, "GET", "/secret", headers={"Origin": "http://x.example"})
        assert secret.status == 403 and b"hidden" not in secret.body
        # a route answering something else than an HttpResponse is a 500, the server lives on
        assert (await request(port, "GET", "/broken")).status == 500
        assert (await request(port, "GET", "/healthz")).status == 200


def test_route_registration_refusals() -> None:
    registry = Registry()

    def route(request: object) -> object:
        return None

    registry.add_route("/ok/", route, prefix=True, methods=("get", "POST"))
    assert registry.routes["/ok/"].methods == {"GET", "POST"}
    for path, options in [
        ("/healthz", {}),
        ("/v1/mine", {}),
        ("no-slash", {}),
        ("/dir", {"prefix": True}),
        ("/x", {"methods": ("FETCH",)}),
        ("/x", {"methods": ()}),
        ("/ok/", {}),
    ]:
        with pytest.raises(RegistrationError):
            registry.add_route(path, route, **options)  # type: ignore[arg-type]
    assert registry.route_for("/ok/deep/file") is registry.routes["/ok/"]
    assert registry.route_for("/ok") is None


async def test_keep_alive_pipelining_and_chunked_bodies(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, plugins=ECHO) as bridge:
        port = bridge.server.port
        host = f"Host: 127.0.0.1:{port}\r\n"
        pipelined = (
            f"GET /healthz HTTP/1.1\r\n{host}\r\n"
            f"POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            f"GET /files/last HTTP/1.1\r\n{host}\r\n"
        ).encode()
        answers = split_answers(await exchange(port, pipelined, answers=3))
        assert [a.status for a in answers] == [200, 200, 200]
        assert answers[0].json()["status"] == "ok"
        assert answers[1].json()["body"] == "abcde"
        assert answers[2].body == b"/files/last"


async def test_limits_and_bad_requests(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=ECHO, server__max_message_bytes=2048
    ) as bridge:
        port = bridge.server.port
        big = b"x" * 2049
        answer = await request(port, "POST", "/echo", big)
        assert answer.status == 413 and b"x" not in answer.body
        host = f"Host: 127.0.0.1:{port}\r\n"
        chunked = (
            f"POST /echo HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n".encode()
            + b"".join(b"400\r\n" + b"y" * 1024 + b"\r\n" for _ in range(3))
        )
        answers = split_answers(await exchange(port, chunked))
        assert answers[0].status == 413
        assert (await request(port, "POST", "/echo", b"x" * 2048)).status == 200
        garbage = await exchange(port, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400")
        # the server still serves everyone
        assert (await request(port, "GET", "/healthz")).status == 200


async def test_plain_http_leaves_no_websocket_handshake_behind(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    """A detached connection ends websockets' handshake task at once (no timeout, no log, no
    abort of the socket), and a keep-alive connection keeps serving afterwards."""
    caplog.set_level(logging.INFO, logger="websockets")
    port = bridge.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(2):
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert json.loads(await reader.readexactly(length))["status"] == "ok"
            await asyncio.sleep(0.05)
            assert not bridge.server.ws_server.handler_tasks
            assert len(bridge.server.http.open) == 1
        assert not [r for r in caplog.records if r.name.startswith("websockets")]
        # a WebSocket client on the same port, while the HTTP connection is open
        async with await bridge.client() as client:
            reply = await client.say("blacksmith", "p1", "hello")
            assert await reply.text()
    finally:
        writer.close()
    for _ in range(50):
        if not bridge.server.http.open:
            break
        await asyncio.sleep(0.02)
    assert not bridge.server.http.open


async def test_idle_keep_alive_connections_are_closed(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, server__http_keepalive_s=0.2) as bridge:
        for after in (b"", b"GET /healthz HTTP/1.1\r\nHo"):  # idle, or an unfinished head
            reader, writer = await asyncio.open_connection("127.0.0.1", bridge.server.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + after)
            async with asyncio.timeout(3):
                received = await reader.read()  # until the server closes
            writer.close()
            assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.count(b"HTTP/") == 1


async def test_per_ip_cap_on_http_connections(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, server__max_connections_per_ip=2
    ) as bridge:
        port = bridge.server.port
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for _, writer in held:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for reader, _ in held:
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        refused = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 429") and b"Retry-After: 1" in refused
        # WebSocket connections are counted apart: a client still connects
        async with await bridge.client() as client:
            assert await (await client.say("blacksmith", "p1", "hi")).text()
        for _, writer in held:
            writer.close()


async def test_expect_100_continue_is_answered_at_once(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, plugins=ECHO) as bridge:
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.server.port)
        body = b"y" * 2000
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.5)
        assert interim.startswith(b"HTTP/1.1 100 ")
        writer.write(body)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        assert json.loads(await reader.readexactly(length))["body"] == body.decode()
        writer.close()
