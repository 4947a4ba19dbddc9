"""The plugin API (npcbridge.plugin.api.PluginAPI): what server-level hooks receive and a class
plugin keeps for its turn hooks (docs/plugins.md, "The plugin API")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from npcbridge import hookimpl
from npcbridge.pipeline.turn import Turn
from npcbridge.plugin.api import PluginAPI
from npcbridge.testing.scripted import ScriptedProvider, running_scripted_app, say


class KeeperSettings(BaseModel):
    note: str = "no note"


class Keeper:
    """Keeps the API from start-up and uses it while a turn runs."""

    def __init__(self) -> None:
        self.api: PluginAPI | None = None
        self.registered_with: Any = None
        self.seen: dict[str, Any] = {}

    @hookimpl
    def npcbridge_register_settings(self, register: Any) -> None:
        register("keeper", KeeperSettings)

    @hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        self.api = api

    @hookimpl
    def npcbridge_register_features(self, register: Any, api: PluginAPI) -> None:
        self.registered_with = api

    @hookimpl
    async def npcbridge_before_request(self, turn: Turn) -> None:
        api = self.api
        assert api is not None
        settings = api.plugin_settings("keeper")
        assert isinstance(settings, KeeperSettings)
        turn.system_parts.append(settings.note)
        self.seen = {
            "persona": api.persona("blacksmith").name,
            "store": api.store is not None,
            "model": (await api.turns.select_model(turn)).id,
            "entry": api.model_entry("8b").id,
            "logger": api.logger("keeper").name,
        }


async def test_a_class_plugin_keeps_the_api_from_start_up_and_uses_it_in_a_turn(
    scripted: ScriptedProvider,
) -> None:
    async with running_scripted_app(
        scripted, plugins=("test_plugin_api:Keeper",), extra={"keeper": {"note": "Be brief."}}
    ) as app:
        keeper = app.plugins.get_plugin("test_plugin_api:Keeper")
        assert isinstance(keeper, Keeper)
        assert isinstance(keeper.api, PluginAPI) and keeper.registered_with is keeper.api
        said = await say(app, "blacksmith", "hello")
        assert said.end["finish"] == "stop"
    assert keeper.seen == {
        "persona": "Brom",
        "store": True,
        "model": "llama-3.1-8b-instant",
        "entry": "llama-3.1-8b-instant",
        "logger": "npcbridge.plugin.keeper",
    }
    (request,) = scripted.requests
    assert request.messages[0]["content"].endswith("Be brief.")
    assert keeper.api.store is None  # closed with the server


async def test_plugins_and_the_pipeline_choose_a_model_in_one_place(
    scripted: ScriptedProvider,
) -> None:
    """``api.turns.select_model`` is the pipeline's own choice (no copy of it or of the default
    model), so a say and a plugin's request pick alike."""
    async with running_scripted_app(scripted) as app:
        picked = app.catalog.entry(app.catalog.ids()[-1])

        async def select_model(turn: Turn) -> Any:
            return picked

        app.pipeline.select_model = select_model  # type: ignore[method-assign]
        said = await say(app, "blacksmith", "hi")
        assert said.frames[0]["model"] == picked.id
        assert await app.api.turns.select_model(said.turn) is picked
