"""The web console's server side: the page and its files, who may read the admin endpoints,
the inspector's turn records (console turns always, games' only when configured), the live
figures, persona import and export. The page itself runs in a browser in test_console_browser.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from npcbridge.builtin.persona import persona_from_card
from npcbridge.console.export import persona_fields
from npcbridge.console.routes import STATIC
from npcbridge.protocol import encode
from npcbridge.protocol.messages import Persona
from npcbridge.providers.base import UpstreamError
from npcbridge.server import http
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.scripted import ScriptedProvider, running_scripted_app, say
from tests.http_helpers import Answer, request
from tests.ws_helpers import hello, recv

API_KEY = "sk-console-secret-0123456789"
API = "/console/api"


async def get(bridge: Bridge, path: str, **headers: str) -> Answer:
    return await asyncio.wait_for(request(bridge.server.port, "GET", path, headers=headers), 10)


async def post(bridge: Bridge, path: str, body: Any) -> Answer:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    return await asyncio.wait_for(
        request(bridge.server.port, "POST", path, data, headers=headers), 10
    )


async def talk(bridge: Bridge, *, attach: bool, line: str = "Can you fix my sword?") -> dict:
    """One connection: hello, (x.console.attach), a memory, a say; the reply.end."""
    async with connect(bridge.url) as ws:
        assert (await hello(ws))["type"] == "welcome"
        if attach:
            await ws.send(encode({"type": "x.console.attach", "id": "a"}))
            assert (await recv(ws))["type"] == "ok"
        await ws.send(
            encode(
                {
                    "type": "memory.add",
                    "id": "m",
                    "npc": "blacksmith",
                    "player": "p1",
                    "text": "the player lost a sword in the mine",
                    "importance": 8,
                }
            )
        )
        assert (await recv(ws))["type"] == "ok"
        await ws.send(
            encode({"type": "say", "id": "s", "npc": "blacksmith", "player": "p1", "text": line})
        )
        while True:
            frame = await recv(ws)
            if frame["type"] in ("reply.end", "error"):
                return frame


@pytest.fixture
async def console(fake_upstream: FakeUpstream, tmp_path: Path):
    async with await start_bridge(
        fake_upstream, tmp_path, upstream__api_key=API_KEY, ratelimit__rpm=600
    ) as bridge:
        yield bridge


async def test_the_page_is_served_at_the_root_with_its_files(console: Bridge) -> None:
    for path in ("/", "/console/"):
        page = await get(console, path)
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert b"/console/console.js" in page.body
        assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, kind in STATIC.items():
        answer = await get(console, f"/console/{name}")
        assert answer.status == 200 and answer.headers["content-type"] == kind
    assert (await get(console, "/console/nothing.js")).status == 404


async def test_console_turns_are_inspected_with_what_went_upstream(console: Bridge) -> None:
    end = await talk(console, attach=True)
    assert end["type"] == "reply.end"
    turns = (await get(console, f"{API}/turns")).json()["turns"]
    assert [(t["source"], t["request_id"], t["npc"]) for t in turns] == [
        ("console", "s", "blacksmith")
    ]
    record = (await get(console, f"{API}/turns/{turns[0]['id']}")).json()
    parts = record["prompt"]["parts"]
    assert parts and all(p["plugin"] for p in parts)
    assert any(p["plugin"] == "npcbridge.builtin.persona" and "Brom" in p["text"] for p in parts)
    # exactly what the upstream received
    sent = console.fake.requests[-1].body
    assert record["prompt"]["messages"] == sent["messages"]
    assert record["model"]["chosen"] == sent["model"] == end["model"]
    assert record["model"]["plugin"] == "npcbridge.builtin.model_select"
    assert record["model"]["rule"].startswith("urgency normal")
    memories = record["memories"]
    assert [m["text"] for m in memories] == ["the player lost a sword in the mine"]
    assert memories[0]["importance"] == 8 and memories[0]["score"] > 0
    assert record["steps"] == [{"model": end["model"], "outcome": "ok", "reason": ""}]
    assert record["reply"]["text"] == end["text"]
    assert record["cost_usd"] == pytest.approx(end["cost_usd"])
    assert record["usage"]["output_tokens"] == end["usage"]["output_tokens"]
    assert record["timing"]["ttft_ms"] == pytest.approx(end["timing"]["ttft_ms"])
    assert (await get(console, f"{API}/turns/999")).status == 404
    assert (await get(console, f"{API}/turns/x")).status == 400


async def test_games_turns_are_kept_only_when_the_operator_says_so(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path) as bridge:
        await talk(bridge, attach=False)
        assert (await get(bridge, f"{API}/turns")).json()["turns"] == []
    async with await start_bridge(
        fake_upstream, tmp_path, extra__console={"capture_games": True, "ring_size": 2}
    ) as bridge:
        for _ in range(3):
            await talk(bridge, attach=False)
        turns = (await get(bridge, f"{API}/turns")).json()["turns"]
        assert [(t["id"], t["source"]) for t in turns] == [(3, "game"), (2, "game")]
        assert (await get(bridge, f"{API}/turns/1")).status == 404  # the ring dropped it


async def test_metrics_come_from_the_registry_and_spend_from_the_turns(console: Bridge) -> None:
    end = await talk(console, attach=False)
    figures = (await get(console, f"{API}/metrics")).json()
    assert figures["turns_total"] == 1 and figures["turns_by_finish"] == {"stop": 1}
    assert figures["ttft"]["count"] == 1 and figures["ttft"]["buckets"][-1] == ["+Inf", 1]
    headroom = figures["headroom"][end["model"]]
    assert headroom and all(0 <= v <= 1 for v in headroom.values())
    # the same series /metrics renders
    scraped = (await get(console, "/metrics")).body.decode()
    assert f'npcbridge_ratelimit_headroom{{limit="rpm",model="{end["model"]}"}}' in scraped
    (today,) = figures["spend"]["days"]
    assert today["usd"] == pytest.approx(end["cost_usd"]) and today["usd"] > 0
    assert today["npc"][0]["name"] == "blacksmith" and today["player"][0]["name"] == "p1"


async def test_admin_endpoints_need_trust_and_the_same_origin(
    fake_upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, upstream__api_key=API_KEY, server__token="s3cret"
    ) as bridge:
        port = bridge.server.port
        origin = await get(bridge, f"{API}/overview", Origin="http://evil.example")
        assert origin.status == 403
        same = await get(bridge, f"{API}/overview", Origin=f"http://127.0.0.1:{port}")
        assert same.status == 200
        monkeypatch.setattr(http, "is_loopback_peer", lambda peer: False)
        assert (await get(bridge, f"{API}/overview")).status == 401
        assert (await get(bridge, f"{API}/turns")).status == 401
        authorized = await get(bridge, f"{API}/overview", Authorization="Bearer s3cret")
        assert authorized.status == 200 and authorized.json()["token_required"] is True
        assert (await get(bridge, "/")).status == 200  # the page itself holds nothing


async def test_the_api_key_appears_in_no_answer(console: Bridge) -> None:
    await talk(console, attach=True)
    paths = ["/", *(f"/console/{name}" for name in STATIC)]
    paths += [f"{API}/overview", f"{API}/turns", f"{API}/turns/1", f"{API}/metrics"]
    for path in paths:
        answer = await get(console, path)
        assert answer.status == 200, path
        assert API_KEY.encode() not in answer.body and b"sk-console" not in answer.body, path
    overview = (await get(console, f"{API}/overview")).json()
    assert set(overview["npcs"]) == {"blacksmith", "mage"}
    assert overview["inspector"] == {"capture_games": False, "ring_size": 200}


PERSONA = {
    "name": 'Brom "the Anvil"',
    "description": "The village blacksmith.\nRough but kind.",
    "personality": "gruff",
    "speech_style": "short sentences",
    "knowledge": ["The mine closed last winter.", "Steel costs 12 gold."],
    "examples": ["Aye, lad.", "Off with you."],
    "system_prompt": "Never mention dragons.",
    "model": "llama-3.1-8b-instant",
    "temperature": 0.7,
    "max_tokens": 120,
    "tier": "small",
    "quality": True,
    "fallbacks": ["llama-3.3-70b-versatile"],
    "latency_budget_ms": 800,
    "cacheable": True,
    "budget_usd_per_day": 0.5,
    "topics": ["swords", "the mine"],
    "actions": [
        {
            "name": "open_shop",
            "description": "Show the shop.",
            "parameters": {"type": "object", "properties": {"item": {"type": "string"}}},
        }
    ],
}


async def test_a_persona_saves_as_toml_and_as_a_card_and_reads_back(console: Bridge) -> None:
    toml = await post(console, f"{API}/export?format=toml", {"npc": "smith", "persona": PERSONA})
    assert toml.status == 200 and toml.headers["content-type"] == "application/toml"
    table = tomllib.loads(toml.body.decode())["npcs"]["smith"]
    assert persona_fields(Persona.model_validate(table)) == persona_fields(
        Persona.model_validate(PERSONA)
    )
    card = await post(console, f"{API}/export?format=card", {"npc": "smith", "persona": PERSONA})
    assert card.json()["spec"] == "chara_card_v2"
    back = persona_from_card(card.json())
    assert persona_fields(back) == persona_fields(Persona.model_validate(PERSONA))
    # the import endpoint is the server's own card mapping
    imported = await post(console, f"{API}/card", card.json())
    assert imported.json()["persona"] == persona_fields(back)
    bad = await post(console, f"{API}/export?format=toml", {"npc": "x", "persona": {"name": 5}})
    assert bad.status == 400 and bad.json()["message"] == "persona.name: must be a string"
    assert (await post(console, f"{API}/card", {"data": {}})).status == 400
    assert (await post(console, f"{API}/export?format=yaml", {})).status == 400


async def test_retries_and_fallbacks_are_in_the_record() -> None:
    provider = ScriptedProvider()
    overrides = {"extra__console": {"capture_games": True}, "retry__base_delay_ms": 1}
    async with running_scripted_app(provider, **overrides) as app:
        provider.script(UpstreamError(status=503), "Aye, lad.")
        said = await asyncio.wait_for(say(app, "blacksmith", "hello"), 10)
        ring = app.plugins.get_plugin("npcbridge.console.plugin").ring
        (record,) = ring.records
    model = said.end["model"]
    assert [(s["model"], s["outcome"], s["reason"]) for s in record["steps"]] == [
        (model, "retry", "503"),
        (model, "ok", ""),
    ]


def test_the_page_ships_in_the_wheel(tmp_path: Path) -> None:
    """The static files are package data: an installed server serves them without a build."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         str(root), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("npcbridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in STATIC:
        assert f"npcbridge/console/static/{name}" in names


def test_headroom_is_the_share_of_each_bucket_left() -> None:
    from npcbridge.gateway.catalog import ModelLimits
    from npcbridge.gateway.ratelimit import RateLimiter
    from npcbridge.gateway.settings import RateLimitSettings

    clock = [100.0]
    limiter = RateLimiter(RateLimitSettings(), clock=lambda: clock[0])
    model = limiter.for_model("openai", "m1", ModelLimits(rpm=4, tpm=1000))
    assert sorted(limiter.headroom()) == [("m1", "rpm", 1.0), ("m1", "tpm", 1.0)]
    model._take(model.amounts(250))
    assert dict((b, v) for _, b, v in limiter.headroom()) == {"rpm": 0.75, "tpm": 0.75}
    clock[0] += 15  # a quarter of a minute refills a quarter of each bucket
    assert dict((b, v) for _, b, v in limiter.headroom()) == {"rpm": 1.0, "tpm": 1.0}
    model.block(5)  # a retry-after: nothing may go
    assert dict((b, v) for _, b, v in limiter.headroom()) == {"rpm": 0.0, "tpm": 0.0}
    model.observe({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "25"})
    clock[0] += 6
    assert dict((b, v) for _, b, v in limiter.headroom())["rpd"] == pytest.approx(0.25, abs=0.01)


def test_spend_tables_keep_the_largest_spenders_and_every_cent_of_the_total() -> None:
    from npcbridge.console.spend import SpendTable

    table = SpendTable(keys=2)
    for player, usd in (("a", 0.5), ("b", 0.1), ("c", 0.3), ("a", 0.25)):
        table.add("smith", player, usd, day="2026-01-02")
    table.add("mage", "a", 1.0, day="2026-01-01")
    view = table.view({"global": 2.0, "player": 1.0, "npc": {"smith": 0.5}})
    today, yesterday = view["days"]
    assert today["day"] == "2026-01-02" and today["usd"] == pytest.approx(1.15)
    assert today["limit_usd"] == 2.0
    assert [(r["name"], r["usd"], r["limit_usd"]) for r in today["player"]] == [
        ("a", 0.75, 1.0),
        ("c", 0.3, 1.0),
    ]  # b, the smallest, was dropped; the day's total still counts it
    assert today["npc"] == [{"name": "smith", "usd": pytest.approx(1.15), "limit_usd": 0.5}]
    assert yesterday["npc"] == [{"name": "mage", "usd": 1.0, "limit_usd": None}]
    for day in range(3, 12):
        table.add("smith", "a", 0.01, day=f"2026-01-{day:02d}")
    assert len(table.view({})["days"]) == 7


def test_spend_tables_stay_bounded_with_a_new_player_every_turn() -> None:
    from npcbridge.console.spend import SpendTable

    table = SpendTable(keys=10)
    table.add("smith", "whale", 5.0, day="2026-01-02")
    for n in range(1000):
        table.add("smith", f"p{n}", 0.001 * (n % 7 + 1), day="2026-01-02")
        assert len(table.days["2026-01-02"]["player"]) <= 20
    rows = table.view({})["days"][0]["player"]
    assert len(rows) == 10 and rows[0] == {"name": "whale", "usd": 5.0, "limit_usd": None}
    assert [r["usd"] for r in rows] == sorted((r["usd"] for r in rows), reverse=True)
    assert table.view({})["days"][0]["usd"] == pytest.approx(
        5.0 + sum(0.001 * (n % 7 + 1) for n in range(1000))
    )


async def test_a_disabled_console_serves_nothing(fake_upstream: FakeUpstream, tmp_path: Path):
    async with await start_bridge(
        fake_upstream, tmp_path, extra__console={"enabled": False}
    ) as bridge:
        for path in ("/", "/console/", "/console/console.js", f"{API}/overview"):
            assert (await get(bridge, path)).status == 404, path
        assert (await get(bridge, "/metrics")).status == 200


async def test_allowed_origins_must_list_the_console_address(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    from websockets.exceptions import InvalidStatus

    with socket.socket() as probe:  # a free port, so that the console's address is known first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    console_origin = f"http://127.0.0.1:{port}"
    for allowed, welcome in ((["https://game.example"], False), ([console_origin], True)):
        async with await start_bridge(
            fake_upstream, tmp_path, port=port, server__allowed_origins=allowed
        ) as bridge:
            if not welcome:
                with pytest.raises(InvalidStatus):
                    async with connect(bridge.url, origin=console_origin):
                        pass
                continue
            async with connect(bridge.url, origin=console_origin) as ws:
                assert (await hello(ws))["type"] == "welcome"
