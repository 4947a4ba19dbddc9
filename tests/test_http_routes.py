"""Who may read ``/healthz`` details and ``/metrics``: loopback peers, or the server token."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from npcbridge.server import http
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())


async def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    return await asyncio.to_thread(_get, url, token)


async def test_loopback_peers_see_details_and_metrics(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path) as bridge:
        base = f"http://127.0.0.1:{bridge.server.port}"
        status, body = await get(base + "/healthz")  # on the WebSocket port
        details = json.loads(body)
        assert status == 200 and details["status"] == "ok" and details["offline"] is False
        status, body = await get(base + "/metrics")
        assert status == 200 and b"npcbridge_" in body


async def test_other_peers_need_the_token(
    fake_upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tests only reach the server over loopback: the peer check is what is replaced
    monkeypatch.setattr(http, "is_loopback_peer", lambda connection: False)
    async with await start_bridge(fake_upstream, tmp_path, server__token="s3cret") as bridge:
        base = f"http://127.0.0.1:{bridge.server.port}"
        assert await get(base + "/healthz") == (200, b'{"status": "ok"}\n')
        status, body = await get(base + "/healthz", token="s3cret")
        assert status == 200 and json.loads(body)["server"].startswith("npcbridge/")
        for token in (None, "wrong", ""):
            status, body = await get(base + "/metrics", token=token)
            assert status == 401 and b"npcbridge_" not in body
        status, body = await get(base + "/metrics", token="s3cret")
        assert status == 200 and b"npcbridge_" in body


def test_loopback_addresses() -> None:
    class Peer:
        def __init__(self, host: str) -> None:
            self.remote_address = (host, 1)

    for host in ("127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1"):
        assert http.is_loopback_peer(Peer(host)), host  # type: ignore[arg-type]
    for host in ("10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "not an address"):
        assert not http.is_loopback_peer(Peer(host)), host  # type: ignore[arg-type]
