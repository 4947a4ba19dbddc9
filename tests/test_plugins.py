"""Hooks: sync and async, chains, first-answer, refusal, extensions, loading by spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from npcbridge.client import NpcBridgeError
from npcbridge.plugins import PluginLoadError, make_plugin_manager
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

ROOT = Path(__file__).resolve().parent.parent


async def test_plugins_from_specs_change_the_turn(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    b = await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:Shouting", "sample_plugins:PickModel")
    )
    try:
        shouting = b.app.plugins.get_plugin("sample_plugins:Shouting")
        async with await b.client() as client:
            reply = await client.say("blacksmith", "p1", "[[reply:aye lad]] please")
            assert await reply.text() == "AYE LAD"
            assert (
                fake_upstream.requests[-1].body["messages"][-1]["content"] == "[[reply:aye lad]] "
            )
            mage = await client.say("mage", "p1", "hi")
            await mage.text()
            assert mage.end["model"] == "llama-3.3-70b-versatile"
            refused = await client.say("blacksmith", "p1", "forbidden lore")
            with pytest.raises(NpcBridgeError) as info:
                await refused.text()
            assert info.value.code == "filtered"
            assert len(fake_upstream.requests) == 2  # the refused turn never went upstream
            echo = await client.request({"type": "x.echo", "value": 42})
            assert echo == {"type": "x.echo", "id": echo["id"], "value": 42}
        assert [r.finish for r in shouting.finished] == ["stop", "stop"]
    finally:
        await b.close()


def test_bad_plugin_spec_is_a_clear_error() -> None:
    with pytest.raises(PluginLoadError, match="no_such_module"):
        make_plugin_manager(None, extra=["no_such_module:thing"], entry_points=False)


async def test_parameters_groq_rejects_are_dropped(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    b = await start_bridge(fake_upstream, tmp_path, plugins=("sample_plugins:GroqUnfriendly",))
    try:
        async with await b.client() as client:
            reply = await client.say("blacksmith", "p1", "[[reply:Aye.]]")
            assert await reply.text() == "Aye."  # the strict fake would answer 400 otherwise
        body = fake_upstream.requests[0].body
        assert not {"logprobs", "top_logprobs", "logit_bias", "n"} & set(body)
        assert body["top_p"] == 0.5
        assert body["messages"][1] == {"role": "user", "content": "Tom: I was here before."}
        assert body["stream_options"] == {"include_usage": True}
    finally:
        await b.close()
