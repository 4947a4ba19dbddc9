"""NPCs with feelings that last: the state feature as a plugin on the declared hooks.

For an NPC whose persona declares ``state`` (every other turn costs one attribute check; no
coroutine, no store access):

1. ``npcbridge_persona`` reads the NPC's mood and its relationship to the player from the store
   and asks ``npcbridge_render_state`` for the prompt part (this plugin's own rendering answers
   last, :mod:`.render`);
2. ``npcbridge_reply_fields`` applies what is known when the reply ends -- familiarity grows,
   the ``say``'s ``effects``, the ``on_action`` effects of the actions taken, and offline the
   rules' judgement -- and puts the new state into ``reply.end.state``;
3. ``npcbridge_after_turn`` starts the small model's judgement in the background (online).

Every change goes through :class:`~.repository.StateRepository`, which tells the watched
thresholds (:mod:`.watches`). ``npcbridge_forget_player`` stops judgements of a forgotten player
(the store erases their relationship rows itself).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...pipeline.turn import Turn, TurnResult
from ...plugin.specs import hookimpl
from .events import REACTION_KEY
from .handler import StateFeature
from .judge import Judge
from .model import Values, changed, view
from .render import render_state
from .rules import judge_exchange
from .settings import StateSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI

log = logging.getLogger("npcbridge.state")

STATE_KEY = "npcbridge.state"
#: turn kinds whose prompt carries the state (and "bark" turns that react to a world event)
PROMPT_KINDS = ("say", "scene")
COMPLETE = ("stop", "length")


class Plugin:
    """The state plugin (one per server)."""

    def __init__(self, api: PluginAPI) -> None:
        self.api = api
        self.configure(StateSettings())

    def configure(self, settings: StateSettings) -> None:
        """Build the feature and the judge for ``settings``."""
        self.settings = settings
        self.feature = StateFeature(self.api, settings)
        self.judge = Judge(self.api, settings)

    # ---------------------------------------------------------------- lifecycle

    @hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """``[extra.state]``."""
        register("state", StateSettings)

    @hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        """Take the validated settings."""
        settings = api.plugin_settings("state")
        assert isinstance(settings, StateSettings)
        self.configure(settings)

    @hookimpl
    def npcbridge_register_handlers(self, register: Callable[..., None]) -> None:
        """``npc.state`` and ``world.event``."""
        self.feature.register_handlers(register)

    @hookimpl
    def npcbridge_register_features(self, register: Callable[[str], None]) -> None:
        """Announce ``state``."""
        register(self.feature.name)

    @hookimpl
    async def npcbridge_shutdown(self, api: PluginAPI) -> None:
        """Wait for running judgements."""
        await self.judge.close()

    @hookimpl
    def npcbridge_forget_player(self, player: str, npc: str | None) -> None:
        """Nothing about a forgotten player may be written after ``memory.forget``."""
        self.judge.cancel_for(player, npc)

    # ---------------------------------------------------------------- one turn

    @hookimpl(trylast=True)
    def npcbridge_persona(self, turn: Turn) -> Awaitable[str | None] | None:
        """The NPC's state as a prompt part (after the persona's own description)."""
        if turn.persona.state is None or self.api.store is None:
            return None
        if turn.kind not in PROMPT_KINDS and REACTION_KEY not in turn.state:
            return None
        return self._prompt(turn)

    async def _prompt(self, turn: Turn) -> str | None:
        spec = turn.persona.state
        assert spec is not None
        try:
            values = await self.feature.repo.load(turn.npc, spec, turn.player or None)
        except Exception:
            log.warning("reading the state of npc=%s failed; answering without it", turn.npc)
            return None
        turn.state[STATE_KEY] = values
        part = await self.api.call("npcbridge_render_state", turn=turn, state=view(values))
        return part or None

    @hookimpl(trylast=True)
    def npcbridge_render_state(self, turn: Turn, state: dict[str, Any]) -> str:
        """The state feature's own rendering (:func:`.render.render_state`)."""
        return render_state(state, turn.player)

    @hookimpl
    def npcbridge_reply_fields(
        self, turn: Turn, result: TurnResult
    ) -> Awaitable[dict[str, Any]] | None:
        """``reply.end.state``: the state after what the end of the turn knows."""
        if STATE_KEY not in turn.state:
            return None
        return self._after_reply(turn, result)

    async def _after_reply(self, turn: Turn, result: TurnResult) -> dict[str, Any]:
        values: Values = turn.state[STATE_KEY]
        if turn.kind == "say" and result.finish in COMPLETE:
            changes = self._turn_changes(turn)
            spec = turn.persona.state
            assert spec is not None

            def update(v: Values) -> Values:
                for change, scale in changes:
                    v = changed(v, change, scale=scale)
                return v

            try:
                values = await self.feature.repo.change(turn.npc, spec, turn.player, update, "turn")
            except Exception:
                log.warning("storing the state of npc=%s failed", turn.npc, exc_info=True)
            turn.state[STATE_KEY] = values
        return {"state": view(values)}

    def _turn_changes(self, turn: Turn) -> list[tuple[dict[str, Any], float]]:
        """(change, scale) pairs a completed exchange brings, in the order applied."""
        spec = turn.persona.state
        assert spec is not None
        volatility = float(spec.volatility)
        out: list[tuple[dict[str, Any], float]] = [
            ({"familiarity": self.settings.familiarity_per_turn}, volatility)
        ]
        if turn.effects:
            out.append((turn.effects, 1.0))
        for action in turn.actions:
            effect = (spec.on_action or {}).get(str(action.get("name")))
            if effect is not None:
                out.append((effect.model_dump(exclude_none=True), 1.0))
        if self._judges(turn) and self.api.offline and turn.player_text:
            rule = judge_exchange(turn.player_text)
            if rule:
                out.append((rule, volatility))
        return out

    def _judges(self, turn: Turn) -> bool:
        spec = turn.persona.state
        return bool(
            spec is not None and (self.settings.judge if spec.judge is None else spec.judge)
        )

    @hookimpl
    def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Online: judge the exchange in the background (the reply has ended)."""
        if STATE_KEY not in turn.state or turn.kind != "say" or result.finish not in COMPLETE:
            return
        if self.api.offline or not self._judges(turn) or not result.text:
            return
        spec = turn.persona.state
        assert spec is not None
        scale = float(spec.volatility)

        async def apply(change: dict[str, Any]) -> None:
            # the connection of the turn hears of the judgement even without a watch
            await self.feature.repo.change(
                turn.npc,
                spec,
                turn.player,
                lambda v: changed(v, change, scale=scale),
                "judgement",
                origin=turn.emit,
            )

        self.judge.schedule(turn, result.text, apply)
