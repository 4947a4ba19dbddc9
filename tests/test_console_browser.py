"""The console in a real browser: headless Chromium (driven over the DevTools protocol) loads
the page from a real server answering through the fake upstream, defines a persona, talks to it
and sees the reply stream in with its emote, compares two models, opens the turn in the
inspector (prompt and cost), browses a player's memories and forgets the player. The picture
of the playground goes to docs/images/console.png (shown in the README and docs/console.md) with
``NPCBRIDGE_UPDATE_SCREENSHOTS=1``, else to the test's temporary folder.

Locally the test skips without Chromium; under CI (``CI`` set) it fails instead.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from tests.chromium import Browser, DevToolsPage, find_chromium, screenshot_path
from tests.http_helpers import request

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = {
    "playground": ROOT / "docs" / "images" / "console.png",
    "inspector": ROOT / "docs" / "images" / "console-inspector.png",
    "metrics": ROOT / "docs" / "images" / "console-metrics.png",
}
SIZE = {"width": 1400, "height": 900}
REPLY = "Arr, the tide be turning, matey. *grins widely* Ye picked a fine night to sail."
SMALL = "A storm, says ye? *squints at the sky* We sail before it, or not at all."
LARGE = (
    "*taps the barometer* The glass be falling fast, matey. We lash the cargo and make for "
    "the lee of Gull Rock."
)

#: page-side helpers: wait for a condition, set a field as a person typing would
HELPERS = """
window.until = async (test, ms = 15000) => {
  const end = Date.now() + ms;
  for (;;) {
    const value = test();
    if (value) return value;
    if (Date.now() > end) throw new Error("timed out waiting for " + test);
    await new Promise((r) => setTimeout(r, 25));
  }
};
window.fill = (selector, value) => {
  const node = document.querySelector(selector);
  node.value = value;
  node.dispatchEvent(new Event("input", { bubbles: true }));
  node.dispatchEvent(new Event("change", { bubbles: true }));
};
window.pageErrors = [];
window.addEventListener("error", (e) => window.pageErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.pageErrors.push(String(e.reason)));
true;
"""


def chromium_or_skip() -> str:
    chromium = find_chromium()
    if chromium is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run the browser suite)")
        pytest.skip(reason)
    return chromium


def js(page: DevToolsPage, code: str) -> Any:
    """Run ``code`` (the body of an async function) in the page and return its value."""
    return page.evaluate(f"(async () => {{ {code} }})()")


def png_card(card: dict[str, Any]) -> bytes:
    """A 1x1 PNG carrying ``card`` the way card editors store it (base64 JSON, tEXt "chara")."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    text = b"chara\0" + base64.b64encode(json.dumps(card).encode())
    pixels = zlib.compress(b"\0\0")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", text)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Mira Quickfingers",
        "description": "A halfling fence in the docks.",
        "personality": "sly",
        "first_mes": "Psst. Looking for something?",
        "mes_example": "",
        "character_book": {"entries": [{"keys": [], "content": "The guard changes at dusk."}]},
        "extensions": {"npcbridge": {"speech_style": "whispers"}},
    },
}


def drive(chromium: str, bridge: Bridge, cost_text: list[str], card_path: Path) -> dict[str, Any]:
    """Everything the browser does (blocking; runs in a thread while the server serves)."""
    url = f"http://127.0.0.1:{bridge.server.port}/"
    seen: dict[str, Any] = {}
    with Browser(chromium, url, window=(SIZE["width"], SIZE["height"])) as browser:
        devtools = browser.wait_devtools()
        with DevToolsPage(devtools, lambda t: t.get("url", "").startswith(url)) as page:
            page.call(
                "Emulation.setDeviceMetricsOverride",
                {**SIZE, "deviceScaleFactor": 1, "mobile": False},
            )
            page.wait_loaded(url)
            page.evaluate(HELPERS)
            seen["status"] = js(
                page,
                "return await until(() => document.querySelector('#status.ok')?.textContent);",
            )
            # a config NPC fills the form; a PNG Character Card imported by file does too
            seen["picked"] = js(
                page,
                """
                fill('#npc-pick', 'blacksmith');
                return [document.querySelector('#npc-key').value,
                        document.querySelector('[name=name]').value];
                """,
            )
            node = page.call(
                "DOM.querySelector",
                {
                    "nodeId": page.call("DOM.getDocument")["root"]["nodeId"],
                    "selector": "#card-file",
                },
            )["nodeId"]
            page.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(card_path)]})
            seen["card"] = js(
                page,
                """
                await until(() => document.querySelector('#persona-status').textContent
                  .startsWith('Imported'));
                return [document.querySelector('#npc-key').value,
                        document.querySelector('[name=name]').value,
                        document.querySelector('[name=knowledge]').value,
                        document.querySelector('[name=speech_style]').value];
                """,
            )
            # a persona with every kind of field, defined through the form
            js(
                page,
                """
                fill('#npc-key', 'rook');
                fill('[name=name]', 'Captain Rook');
                fill('[name=description]', 'A one-eyed pirate captain moored in the harbour.');
                fill('[name=personality]', 'boastful, superstitious, generous with rum');
                fill('[name=speech_style]', 'pirate slang, calls everyone matey');
                fill('[name=knowledge]', 'The harbour master takes bribes.\\nA storm comes.');
                fill('[name=examples]', 'Arr, matey!');
                fill('[name=temperature]', '0.8');
                fill('[name=max_tokens]', '120');
                document.querySelector('#define').click();
                await until(() => document.querySelector('#persona-status').textContent
                  .startsWith('Defined rook'));
                return true;
                """,
            )
            # talk: the reply streams in (seen partial while the cursor blinks), then ends
            seen["partial"] = js(
                page,
                """
                fill('#line', 'Where are we sailing, captain?');
                document.querySelector('#send').click();
                const partial = await until(() => {
                  const box = document.querySelector('.reply.streaming .text');
                  return box && box.textContent.length > 0 && box.textContent;
                });
                await until(() => document.querySelector('.reply:not(.streaming) .meta a'));
                return partial;
                """,
            )
            seen["reply"] = js(page, "return document.querySelector('.reply .text').textContent;")
            seen["emotes"] = js(
                page,
                "return [...document.querySelectorAll('.reply .emote')].map(e => e.textContent);",
            )
            seen["meta"] = js(page, "return document.querySelector('.reply .meta').textContent;")
            # the same line to two models side by side
            seen["compare"] = js(
                page,
                """
                document.querySelector('#compare').checked = true;
                fill('#line-model', 'llama-3.1-8b-instant');
                fill('#line-model-b', 'llama-3.3-70b-versatile');
                fill('#line', 'And what of the storm?');
                document.querySelector('#send').click();
                await until(() => document.querySelectorAll('.replies')[1]
                  ?.querySelectorAll('.reply:not(.streaming) .meta a').length === 2);
                return [...document.querySelectorAll('.replies')[1].querySelectorAll('.who')]
                  .map(w => w.textContent);
                """,
            )
            shot = page.screenshot(SIZE)
            seen["screenshot"] = shot
            # regenerate: the last line again, to both models
            seen["regenerated"] = js(
                page,
                """
                document.querySelector('#regenerate').click();
                await until(() => document.querySelectorAll('.replies').length === 3
                  && document.querySelectorAll('.replies')[2]
                    .querySelectorAll('.reply:not(.streaming) .meta a').length === 2);
                return document.querySelectorAll('.line.player').length;
                """,
            )
            # the persona saved as a [npcs.*] table
            seen["toml"] = js(
                page,
                """
                document.querySelector('#save-toml').click();
                return await until(() => document.querySelector('#export-out').textContent);
                """,
            )
            # the first turn in the inspector: its prompt and its cost
            seen["inspector"] = js(
                page,
                """
                document.querySelector('.reply .meta a.inspect').click();
                await until(() => document.querySelector('#detail-cost'));
                return {
                  prompt: document.querySelector('#detail-prompt').textContent,
                  cost: document.querySelector('#detail-cost').textContent,
                  rule: document.querySelector('#detail-rule').textContent,
                  messages: document.querySelector('#detail-messages').textContent,
                  rows: document.querySelectorAll('#turns tbody tr').length,
                };
                """,
            )
            cost_text.append(seen["inspector"]["cost"])
            seen["inspector_shot"] = page.screenshot(SIZE)
            # the live figures: two snapshots two seconds apart draw the charts
            seen["metrics"] = js(
                page,
                """
                document.querySelector('#tabs [data-tab=metrics]').click();
                await until(() => document.querySelector('#rate-now').textContent
                  .includes('turns'));
                await new Promise((r) => setTimeout(r, 2300));
                return {
                  rate: document.querySelector('#rate-now').textContent,
                  ttft: document.querySelector('#ttft-note').textContent,
                  spend: [...document.querySelectorAll('#spend .bar')].map(b => b.textContent),
                  errors: document.querySelector('#errors').textContent,
                };
                """,
            )
            seen["metrics_shot"] = page.screenshot(SIZE)
            # the memory browser: the fact shows with its scores; then the player is forgotten
            seen["memories"] = js(
                page,
                """
                document.querySelector('#tabs [data-tab=memory]').click();
                fill('#memory-player', 'console');
                document.querySelector('#memory-form button').click();
                await until(() => document.querySelector('.memory-table'));
                return [...document.querySelectorAll('.memory-table tbody tr')]
                  .map(r => [...r.children].map(c => c.textContent));
                """,
            )
            seen["forgot"] = js(
                page,
                """
                window.confirm = () => true;
                document.querySelector('#forget').click();
                return await until(() => {
                  const text = document.querySelector('#memory-status').textContent;
                  return text.startsWith('Forgot') && text;
                });
                """,
            )
            seen["after_forget"] = js(
                page, "return document.querySelectorAll('.memory-table').length;"
            )
            seen["errors"] = js(page, "return window.pageErrors;")
    return seen


async def test_the_console_in_headless_chromium(tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    async with FakeUpstream(ttft_ms=120, tokens_per_s=40) as fake:
        async with await start_bridge(fake, tmp_path) as bridge:
            # the first line goes to the small model the selection rule picks, then the comparison
            fake.script(REPLY, SMALL, model="llama-3.1-8b-instant")
            fake.script(LARGE, model="llama-3.3-70b-versatile")
            store = bridge.app.store
            assert store is not None
            # a long-term memory the memory browser will show (the player the page talks as)
            async with await bridge.client() as client:
                await asyncio.wait_for(
                    client.memory_add(
                        "blacksmith", "the player owes 3 gold", player="console", importance=7
                    ),
                    10,
                )
            cost_text: list[str] = []
            card_path = tmp_path / "mira.png"
            card_path.write_bytes(png_card(CARD))
            seen = await asyncio.wait_for(
                asyncio.to_thread(drive, chromium, bridge, cost_text, card_path), 120
            )
            turns = (await request(bridge.server.port, "GET", "/console/api/turns")).json()
            remaining_facts = await store.memories("blacksmith", "console")
            remaining_window = await store.recent_turns("rook", "console", 10)

    assert seen["errors"] == []
    assert seen["picked"] == ["blacksmith", "Brom"]
    assert seen["card"] == [
        "mira_quickfingers",
        "Mira Quickfingers",
        "The guard changes at dusk.",
        "whispers",
    ]
    assert seen["status"].startswith("npcbridge/")
    # streamed: a part of the reply was on screen before its end
    assert 0 < len(seen["partial"]) < len(REPLY.replace(" *grins widely*", ""))
    assert seen["reply"] == "Arr, the tide be turning, matey. Ye picked a fine night to sail."
    assert seen["emotes"] == ["*grins widely*"]
    assert "stop" in seen["meta"] and "tokens" in seen["meta"]
    assert seen["compare"] == [
        "rook@llama-3.1-8b-instant · llama-3.1-8b-instant",
        "rook@llama-3.3-70b-versatile · llama-3.3-70b-versatile",
    ]
    # what the inspector shows is what the upstream got and what the turn cost
    first = fake.requests[0].body
    system = first["messages"][0]["content"]
    assert "Captain Rook" in system and "pirate slang" in system
    assert "Captain Rook" in seen["inspector"]["prompt"]
    assert "npcbridge.builtin.persona" in seen["inspector"]["prompt"]
    assert "Where are we sailing, captain?" in seen["inspector"]["messages"]
    oldest = min(turns["turns"], key=lambda t: t["id"])
    assert seen["inspector"]["cost"] == f"${oldest['cost_usd']:.6f}"
    assert oldest["cost_usd"] > 0
    figures = seen["metrics"]
    assert figures["rate"].endswith(" turns/s · 5 turns")
    assert figures["ttft"].startswith("5 first tokens")
    assert any(row.startswith("npc rook@llama-3.3-70b-versatile") for row in figures["spend"])
    assert any(row.startswith("player console") for row in figures["spend"])
    assert figures["errors"] == "none yet"
    assert seen["inspector"]["rows"] == 5  # the line, the comparison, its regeneration
    assert seen["regenerated"] == 3
    assert seen["toml"].startswith('[npcs.rook]\nname = "Captain Rook"\n')
    assert 'speech_style = "pirate slang, calls everyone matey"' in seen["toml"]
    assert "model_select" in seen["inspector"]["rule"]
    # the memory browser listed the fact with kind, importance and score; forget erased it all
    assert [row[0:2] for row in seen["memories"]] == [["fact", "7"]]
    assert seen["memories"][0][-1] == "the player owes 3 gold"
    assert float(seen["memories"][0][2]) > 0
    removed = int(seen["forgot"].split(": ")[1].split()[0])
    assert removed >= 2  # the fact and the conversation turns
    assert seen["after_forget"] == 0
    assert remaining_facts == [] and remaining_window == []
    shot = seen["screenshot"]
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    screenshot_path(SCREENSHOTS["playground"], tmp_path).write_bytes(shot)
    screenshot_path(SCREENSHOTS["inspector"], tmp_path).write_bytes(seen["inspector_shot"])
    screenshot_path(SCREENSHOTS["metrics"], tmp_path).write_bytes(seen["metrics_shot"])
