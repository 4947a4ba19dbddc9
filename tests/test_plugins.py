"""Hooks: sync and async, chains, first-answer, refusal, extensions, registration hooks,
handlers as tasks, provider catalogs, settings sections, loading (once, with a log line)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from pathlib import Path

import pytest
import sample_plugins

from npcbridge.app import StartupError
from npcbridge.builtin.model_select import pick
from npcbridge.client import NpcBridgeError
from npcbridge.gateway.catalog import default_models
from npcbridge.plugin import manager as plugins
from npcbridge.plugin.manager import ENTRY_POINT_GROUP, PluginLoadError, make_plugin_manager
from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

ROOT = Path(__file__).resolve().parent.parent


async def test_plugins_from_specs_change_the_turn(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:Shouting", "sample_plugins:PickModel")
    ) as b:
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


def test_bad_plugin_spec_is_a_clear_error() -> None:
    with pytest.raises(PluginLoadError, match="no_such_module"):
        make_plugin_manager(None, extra=["no_such_module:thing"], entry_points=False)


def test_a_plugin_registered_later_is_called_and_one_unregistered_is_not() -> None:
    from npcbridge.plugin.specs import hookimpl

    class Late:
        @hookimpl
        def npcbridge_persona(self, turn: object) -> str:
            return "late"

    pm = make_plugin_manager(None, entry_points=False)
    before = [impl.plugin_name for impl in pm.impls("npcbridge_persona")]
    late = Late()
    pm.register(late, name="late")
    assert [impl.plugin_name for impl in pm.impls("npcbridge_persona")] == ["late", *before]
    pm.unregister(late)
    assert [impl.plugin_name for impl in pm.impls("npcbridge_persona")] == before


async def test_parameters_groq_rejects_are_dropped(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:GroqUnfriendly",)
    ) as b:
        async with await b.client() as client:
            reply = await client.say("blacksmith", "p1", "[[reply:Aye.]]")
            assert await reply.text() == "Aye."  # the strict fake would answer 400 otherwise
        body = fake_upstream.requests[0].body
        assert not {"logprobs", "top_logprobs", "logit_bias", "n"} & set(body)
        assert body["top_p"] == 0.5
        assert body["messages"][1] == {"role": "user", "content": "Tom: I was here before."}
        assert body["stream_options"] == {"include_usage": True}


async def test_the_upstream_gets_a_json_body_and_no_description_of_this_machine(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The body goes as JSON bytes (non-ASCII kept as UTF-8) to the base URL's chat path, with
    the key; the SDK's headers describing this machine (OS, architecture, Python) stay here."""
    async with await start_bridge(fake_upstream, tmp_path) as b:
        async with await b.client() as client:
            reply = await client.say("blacksmith", "p1", "[[reply:Aye.]] Grüße, Schmied")
            assert await reply.text() == "Aye."
    request = fake_upstream.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"].startswith("Bearer ")
    assert not [
        name
        for name in request.headers
        if name.startswith("x-stainless-")
        and name not in ("x-stainless-retry-count", "x-stainless-read-timeout")
    ]
    assert request.body["messages"][-1]["content"].endswith("Grüße, Schmied")
    assert request.body["stream"] is True


# ------------------------------------------------------------------------ message handlers


async def test_a_slow_handler_does_not_delay_the_connections_other_messages(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:SlowHandler",)
    ) as b:
        slow = b.app.plugins.get_plugin("sample_plugins:SlowHandler")
        async with await b.client() as client:
            waiting = asyncio.ensure_future(client.request({"type": "x.wait"}))
            await asyncio.sleep(0.05)
            pong = await asyncio.wait_for(client.request({"type": "ping"}), 2)
            assert pong["type"] == "pong" and not waiting.done()
            slow.release.set()
            assert (await asyncio.wait_for(waiting, 2))["type"] == "x.wait"


async def test_extension_errors_carry_the_request_id_and_keep_the_connection(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:SlowHandler",)
    ) as b:
        async with await b.client() as client:
            with pytest.raises(NpcBridgeError) as refused:
                await asyncio.wait_for(client.request({"type": "x.refuse", "id": "r-1"}), 2)
            assert refused.value.code == "bad_request"
            with pytest.raises(NpcBridgeError) as crashed:
                await asyncio.wait_for(client.request({"type": "x.crash", "id": "r-2"}), 2)
            assert crashed.value.code == "internal"
            assert "bug" not in str(crashed.value)
            pong = await asyncio.wait_for(client.request({"type": "ping"}), 2)
            assert pong["type"] == "pong"  # the connection survived


async def test_handlers_and_features_come_only_from_the_registration_hooks(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path) as b:
        assert {"quest.generate", "scene.say", "memory.add"} <= set(b.app.registry.handlers)
        assert b.app.features[:4] == ("stream", "cancel", "emotes", "actions")
        assert {"quest", "barks", "scenes", "memory"} <= set(b.app.features)
        assert "/metrics" in b.app.http_routes
        with pytest.raises(TypeError):
            b.app.registry.handlers["x.new"] = None  # type: ignore[index]


async def test_a_plugin_cannot_take_a_core_message_type(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    with pytest.raises(PluginLoadError, match="'say' cannot be registered"):
        await start_bridge(fake_upstream, tmp_path, plugins=("sample_plugins:TakesCoreType",))


# ------------------------------------------------------------------------ reply.end, prompts


async def test_reply_fields_are_added_and_a_system_note_is_per_request(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:ReplyFields",)
    ) as b:
        async with await b.client() as client:
            tired = await client.say("blacksmith", "p1", "[[reply:Aye.]]", context={"tired": 1})
            assert await asyncio.wait_for(tired.text(), 5) == "Aye."
            assert tired.end["mood"] == "calm" and tired.end["finish_seen"] == "stop"
            assert tired.end["text"] == "Aye."  # a field the server sets is kept
            plain = await client.say("blacksmith", "p1", "[[reply:Hm.]]")
            await asyncio.wait_for(plain.text(), 5)
        first, second = (r.body["messages"][0]["content"] for r in fake_upstream.requests)
        assert first.endswith("The player looks tired.")
        assert "tired" not in second


# ------------------------------------------------------------------------ providers


async def test_a_providers_models_join_the_catalog_but_not_tier_selection(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:CannedProvider",)
    ) as b:
        catalog = b.app.catalog
        assert catalog.ids()[:4] == [m.id for m in default_models()]  # the defaults stay
        canned = catalog.resolve("canned-1")
        assert canned.provider == "canned" and canned.tier is None
        assert "canned-1" not in [e.id for e in catalog.by_tier("small")]
        assert "canned-small" in [e.id for e in catalog.by_tier("small")]  # it opted in
        # every Groq model unhealthy: tier selection still never falls to canned-1
        assert pick(catalog, "small", lambda model: model.startswith("canned")) == "canned-small"
        async with await b.client() as client:
            assert "canned-1" in client.welcome["models"]
            reply = await client.say("blacksmith", "p1", "hi", context={"canned": True})
            assert await asyncio.wait_for(reply.text(), 5) == "Canned words."
            assert reply.end["model"] == "canned-1"
        assert not fake_upstream.requests
        # the provider's declared limits are the ones its model is paced by
        buckets = b.app.gateway.limiter.models["canned:canned-1"].buckets
        assert buckets["rpm"].limit == 7 and buckets["tpm"].limit == 900


async def test_a_model_naming_an_unregistered_provider_stops_start_up(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    models = [{"id": "llama-3.1-8b-instant"}, {"id": "mystery", "provider": "nowhere"}]
    with pytest.raises(StartupError) as info:
        await start_bridge(fake_upstream, tmp_path, models=models)
    assert "'mystery'" in str(info.value) and "'nowhere'" in str(info.value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------ settings


async def test_a_plugins_settings_section_is_validated_in_one_line(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    plugins = ("sample_plugins:Settings",)
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=plugins, extra={"sample": {"loudness": 3}}
    ) as b:
        assert b.app.plugin_settings("sample").loudness == 3  # type: ignore[attr-defined]
        assert b.app.plugin_settings("sample").greeting == "hello"  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError) as info:
        await start_bridge(
            fake_upstream, tmp_path, plugins=plugins, extra={"sample": {"loudness": "lots"}}
        )
    assert str(info.value).startswith("extra.sample.loudness: ")
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------ loading


def _entry_points(*specs: tuple[str, str]) -> list[importlib.metadata.EntryPoint]:
    return [importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in specs]


def test_a_plugin_installed_and_named_is_loaded_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    found = _entry_points(("shout", "sample_plugins:Shouting"), ("pick", "sample_plugins"))
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: found)
    with caplog.at_level(logging.INFO, "npcbridge.plugin.manager"):
        pm = make_plugin_manager(
            None, configured=["sample_plugins:Shouting"], extra=["sample_plugins"]
        )
    shouting = pm.get_plugin("shout")
    assert isinstance(shouting, sample_plugins.Shouting)  # a class is instantiated, once
    assert pm.get_plugin("sample_plugins:Shouting") is None
    assert pm.get_plugin("pick") is sample_plugins
    assert [p.name for p in pm.loaded] == ["shout", "pick"]
    assert pm.loaded[0].sources == ["entry point (unknown distribution)", "config"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("plugin ")]
    assert lines == [
        "plugin shout unversioned from entry point (unknown distribution), config",
        "plugin pick unversioned from entry point (unknown distribution), --plugin",
    ]


def test_an_installed_plugin_logs_its_distribution_and_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "npcbridge.plugin.manager"):
        pm = make_plugin_manager(None, extra=["npcbridge_pirate"], entry_points=False)
    assert pm.loaded[0].version == "0.1.0"
    assert "plugin npcbridge_pirate 0.1.0 from --plugin" in caplog.messages


def test_the_builtin_line_names_each_builtin_by_what_it_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "npcbridge.plugin.manager"):
        make_plugin_manager(None, entry_points=False, disabled=["npcbridge.builtin.emotes"])
    line = next(m for m in caplog.messages if m.startswith("builtin plugins "))
    names = line.removeprefix("builtin plugins ").split(" (")[0].split(", ")
    assert names == [
        "providers",
        "persona",
        "memory",
        "model_select",
        "metrics",
        "postprocess",
        "gameplay",
        "state",
        "voice",
        "console",
        "tracing",
    ]


def test_a_broken_entry_point_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    found = _entry_points(("broken", "no_such_module_here:thing"))
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: found)
    with pytest.raises(PluginLoadError, match="'broken'.*ModuleNotFoundError"):
        make_plugin_manager(None)


def test_call_modes_drive_dispatch() -> None:
    pm = make_plugin_manager(None, extra=["sample_plugins:PickModel"], entry_points=False)

    class Turnish:
        npc = "mage"
        context: dict = {}

    assert pm.call_sync("npcbridge_select_model", turn=Turnish(), catalog=None) == (
        "llama-3.3-70b-versatile"
    )
    with pytest.raises(TypeError, match="must be synchronous"):
        pm.call_sync("npcbridge_shutdown", api=None)


async def test_an_edited_turn_text_goes_upstream_but_the_history_keeps_the_players_line(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(
        fake_upstream, tmp_path, plugins=("sample_plugins:Shouting",)
    ) as b:
        async with await b.client() as client:
            first = await client.say("blacksmith", "p1", "[[reply:aye]] please")
            await asyncio.wait_for(first.text(), 5)
            second = await client.say("blacksmith", "p1", "[[reply:so]] again")
            await asyncio.wait_for(second.text(), 5)
        assert fake_upstream.requests[0].body["messages"][-1]["content"] == "[[reply:aye]] "
        assert b.app.store is not None
        stored = await b.app.store.recent_turns("blacksmith", "p1", 5)
        assert [t.user_text for t in stored] == ["[[reply:aye]] please", "[[reply:so]] again"]
        history = [m["content"] for m in fake_upstream.requests[1].body["messages"]]
        assert "[[reply:aye]] please" in history  # the next prompt remembers what was said
