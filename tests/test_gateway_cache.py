"""The gateway's reply cache and /metrics end to end: cache hits replayed without the upstream,
cacheable personas, and the counters /metrics shows after real turns."""

from __future__ import annotations

import asyncio

import pytest
from gateway_helpers import (
    ALONE,
    SMALL,
)

from npcbridge.client import NpcBridgeError
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply

# ------------------------------------------------------------------ cache


async def test_cache_hit_streams_the_reply_without_upstream(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        first = await client.say("smith", "p1", "[[words:7]]", temperature=0)
        await first.text()
        second = await client.say("smith", "p2", "[[words:7]]", temperature=0)
        await second.text()
        warm = await client.say("smith", "p3", "[[words:7]]", temperature=0.7)
        await warm.text()
    assert len(gw.fake.requests) == 2  # the second reply came from the cache
    assert second.end["cached"] is True
    assert second.end["cost_usd"] == 0.0
    assert second.end["text"] == first.end["text"]
    # the cache replays the upstream's deltas (the outbox may coalesce frames on the way)
    deltas = [f["text"] for f in second.frames if f["type"] == "reply.delta"]
    assert deltas and "".join(deltas) == second.end["text"]
    (_, cached), *_ = gw.app.gateway.cache.entries.values()
    # (the provider merges tokens that arrived in one network read into one delta)
    assert cached.deltas and "".join(cached.deltas) == first.end["text"]
    assert "cached" not in first.end and "cached" not in warm.end


async def test_cacheable_persona_barks_hit_the_cache(gw: Bridge) -> None:
    async with await gw.client() as client:
        await client.define_npc("crier", {"name": "Crier", "cacheable": True, "model": SMALL})
        texts = []
        for player in ("a", "b", "c"):
            reply = await client.say("crier", player, "[[reply:Hear ye!]]")
            texts.append(await reply.text())
    assert texts == ["Hear ye!"] * 3
    assert len(gw.fake.requests) == 1
    assert gw.app.gateway.cache.hits == 2


# ------------------------------------------------------------------ metrics


async def _get(bridge: Bridge, path: str) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection(bridge.server.host, bridge.server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = b""
    while b"\r\n\r\n" not in data:
        data += await reader.read(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    while len(body) < length:
        body += await reader.read(65536)
    writer.close()
    return head, body


async def test_metrics_endpoint(gw: Bridge) -> None:
    gw.fake.script(Reply(status=503))
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        await (await client.say("smith", "p1", "[[words:5]]", temperature=0)).text()
        await (await client.say("smith", "p2", "[[words:5]]", temperature=0)).text()
    head, body = await _get(gw, "/metrics")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"text/plain" in head
    text = body.decode()
    assert f'npcbridge_turns_total{{finish="stop",model="{SMALL}"}} 2.0' in text
    assert "npcbridge_cache_hits_total 1.0" in text
    assert f'npcbridge_retries_total{{model="{SMALL}",reason="503"}} 1.0' in text
    assert f'npcbridge_upstream_requests_total{{model="{SMALL}",outcome="503"}} 1.0' in text
    assert f'npcbridge_tokens_total{{direction="output",model="{SMALL}"}} 5.0' in text
    assert "npcbridge_upstream_ttft_seconds_bucket" in text
    assert "npcbridge_upstream_latency_seconds_count" in text
    assert "npcbridge_ratelimit_queue_length 0.0" in text
    assert "npcbridge_ratelimit_wait_seconds_count" in text
    assert "npcbridge_cost_usd_total" in text


async def test_metrics_count_errors_by_code(gw: Bridge) -> None:
    gw.fake.script(Reply(status=400))
    async with await gw.client() as client:
        await client.define_npc("smith", ALONE)
        with pytest.raises(NpcBridgeError):
            await (await client.say("smith", "p1", "hi")).text()
    _, body = await _get(gw, "/metrics")
    assert 'npcbridge_errors_total{code="upstream_error"} 1.0' in body.decode()
