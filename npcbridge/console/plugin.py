"""The console as a plugin on the declared hooks, the way a third party would build it:
``[extra.console]`` settings, the routes, ``x.console.attach`` (a connection asks for its
turns to be inspected), and ``npcbridge_after_turn`` filling the inspector and the spend tables.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..pipeline.turn import Turn, TurnResult
from ..plugin.api import PluginAPI
from ..plugin.specs import hookimpl
from ..protocol.frames import ok_frame
from .records import TurnRing
from .routes import ConsoleRoutes
from .settings import ConsoleSettings
from .spend import SpendTable

#: connections that asked to be inspected, the newest kept (each console tab is one)
MAX_ATTACHED = 256


class Plugin:
    """The web console of one server."""

    def __init__(self, api: PluginAPI) -> None:
        self.api = api
        self.settings = ConsoleSettings()
        self.ring = TurnRing(self.settings.ring_size)
        self.spend = SpendTable(self.settings.spend_keys)
        self.attached: OrderedDict[str, None] = OrderedDict()

    @hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """``[extra.console]``."""
        register("console", ConsoleSettings)

    @hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        """Take the validated settings and size the inspector's ring."""
        settings = api.plugin_settings("console")
        assert isinstance(settings, ConsoleSettings)
        self.settings = settings
        self.ring = TurnRing(settings.ring_size)
        self.spend = SpendTable(settings.spend_keys)

    @hookimpl
    def npcbridge_register_routes(self, register: Callable[..., None], api: PluginAPI) -> None:
        """The page at ``/`` and ``/console/``, the admin endpoints under ``/console/api/``."""
        if self.settings.enabled:
            ConsoleRoutes(api, self.settings, self.ring, self.spend).register(register)

    @hookimpl
    def npcbridge_register_handlers(self, register: Callable[..., None]) -> None:
        """``x.console.attach``: the console page's connection (its turns are inspected)."""
        if self.settings.enabled:
            register("x.console.attach", self.attach)

    async def attach(self, session: Any, message: Any) -> None:
        """Inspect this connection's turns from now on."""
        self.attached[session.id] = None
        self.attached.move_to_end(session.id)
        while len(self.attached) > MAX_ATTACHED:
            self.attached.popitem(last=False)
        session.send(ok_frame(message.id))

    @hookimpl
    def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Count the cost; keep the record of a console turn (of a game's turn when
        ``capture_games`` is on)."""
        if not self.settings.enabled:
            return
        self.spend.add(turn.npc, turn.player, result.cost_usd)
        console = turn.session_id in self.attached
        if console or self.settings.capture_games:
            self.ring.add(turn, result, "console" if console else "game")
