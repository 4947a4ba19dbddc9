"""The judgement of an exchange: how it moved the NPC, decided after the reply has ended.

Online, a small model (``[extra.state] judge_model``, else the cheapest ``small`` model) reads the
exchange and answers a JSON object ``{"mood", "intensity", "trust", "affection"}``. It is an
ordinary gateway request of turn kind ``judgement`` (rate limits, retries, budgets and metrics
apply) that runs in the background: the reply, and so the first token, never waits for it. One
judgement per (npc, player) runs at a time; an exchange that ends while one runs is judged by
rules only. Offline (no API key) the rules of :mod:`.rules` judge at once.

Whatever judges, every amount is held to ``judge_max_step`` and scaled by the NPC's volatility.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...pipeline.turn import Turn
from ...protocol.messages import MOODS
from ...providers.base import ProviderRequest
from ..upstream import complete
from .settings import StateSettings

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI

log = logging.getLogger("npcbridge.state")

JUDGE_INSTRUCTIONS = (
    "You judge how {name}, a character in a game, feels after the exchange below with the "
    "player {player}. Answer with only a JSON object: "
    '{{"mood": one of {moods}, "intensity": how strongly {name} feels it, 0 to 1, '
    '"trust": how much more {name} trusts {player} now, -10 to 10, '
    '"affection": how much more {name} likes {player} now, -10 to 10}}. '
    "An ordinary polite exchange is neutral with small amounts."
)

_OBJECT = re.compile(r"\{.*\}", re.S)


def parse_judgement(text: str, max_step: float) -> dict[str, Any] | None:
    """The change a judging model's answer names, held to the documented ranges; None when the
    answer holds no usable object (the exchange then moves nothing)."""
    match = _OBJECT.search(text)
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    change: dict[str, Any] = {}
    if data.get("mood") in MOODS:
        change["mood"] = data["mood"]
        intensity = data.get("intensity")
        if isinstance(intensity, (int, float)) and not isinstance(intensity, bool):
            change["intensity"] = min(1.0, max(0.0, float(intensity)))
    for key in ("trust", "affection"):
        amount = data.get(key)
        if isinstance(amount, (int, float)) and not isinstance(amount, bool):
            change[key] = min(max_step, max(-max_step, float(amount)))
    return change


class Judge:
    """Runs judgements in the background for one server."""

    def __init__(self, api: PluginAPI, settings: StateSettings) -> None:
        self.api = api
        self.settings = settings
        self.tasks: set[asyncio.Task[None]] = set()
        self.busy: dict[tuple[str, str], asyncio.Task[None]] = {}

    def schedule(
        self,
        turn: Turn,
        reply: str,
        apply: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> bool:
        """Start judging ``turn``'s exchange unless one of the pair runs; ``apply`` gets the
        change the model named."""
        key = (turn.npc, turn.player)
        if key in self.busy:
            return False
        task = asyncio.create_task(self._run(turn, reply, apply))
        self.tasks.add(task)
        self.busy[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            if self.busy.get(key) is t:
                del self.busy[key]

        task.add_done_callback(done)
        return True

    async def _run(
        self, turn: Turn, reply: str, apply: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        try:
            change = await self.judge(turn, reply)
            if change:
                await apply(change)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # an upstream failure or a store outage: this exchange moves nothing
            log.warning(
                "judging the exchange of npc=%s player=%s failed: %s",
                turn.npc,
                turn.player,
                type(exc).__name__,
            )

    async def judge(self, turn: Turn, reply: str) -> dict[str, Any] | None:
        """Ask the judging model about the exchange; the change it names, or None."""
        s = self.settings
        if s.judge_model:
            model = self.api.model_entry(s.judge_model)
        else:
            model = self.api.catalog.cheapest("small") or self.api.model_entry(
                self.api.default_model
            )
        name = turn.persona.name
        messages = [
            {
                "role": "system",
                "content": JUDGE_INSTRUCTIONS.format(
                    name=name, player=turn.player, moods=", ".join(MOODS)
                ),
            },
            {"role": "user", "content": f"{turn.player}: {turn.player_text}\n{name}: {reply}"},
        ]
        request = ProviderRequest(
            model=model.id,
            messages=messages,
            max_tokens=s.judge_max_tokens,
            temperature=0.0,
            response_format={"type": "json_object"} if model.json_schema else None,
            persona_name=name,
            kind="judgement",
        )
        judged = Turn(
            request_id=f"judgement-{turn.request_id}",
            npc=turn.npc,
            persona=turn.persona,
            player=turn.player,
            text=messages[1]["content"],
            session_id=turn.session_id,
            kind="judgement",
            urgency="deep",
            max_tokens=s.judge_max_tokens,
            temperature=0.0,
        )
        completion = await complete(self.api.turns, judged, model, request)
        return parse_judgement(completion.text, s.judge_max_step)

    def cancel_for(self, player: str, npc: str | None = None) -> None:
        """Cancel running judgements of a player (``memory.forget``: nothing of theirs may be
        written after it)."""
        for (n, p), task in list(self.busy.items()):
            if p == player and (npc is None or n == npc):
                task.cancel()

    async def close(self) -> None:
        """Wait for running judgements (up to ``shutdown_wait_s``), then cancel the rest."""
        if not self.tasks:
            return
        _, still = await asyncio.wait(set(self.tasks), timeout=self.settings.shutdown_wait_s)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=2)
