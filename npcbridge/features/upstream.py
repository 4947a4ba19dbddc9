"""One non-streamed upstream completion through the gateway, for feature requests.

Quests go through the same gateway as dialogue (rate limits, retries, breakers, budgets, the
response cache) and are accounted like turns: the after-turn hooks see a :class:`TurnResult`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..pipeline.turn import Turn, Usage
from ..providers.base import ProviderRequest, StreamDone, TextDelta

if TYPE_CHECKING:
    from ..gateway.catalog import ModelEntry
    from ..plugin.api import Turns


@dataclass
class Completion:
    """The text of one upstream answer and what it cost."""

    text: str
    model: str
    finish: str
    usage: Usage
    cost_usd: float


async def complete(
    turns: Turns, turn: Turn, model: ModelEntry, request: ProviderRequest
) -> Completion:
    """Run ``request`` through ``turns.stream`` (the gateway) and collect the text.

    ``turn`` is copied with fresh ``state`` so every attempt is accounted on its own. An upstream
    failure raises :class:`npcbridge.providers.base.UpstreamError` as the gateway gave it (its
    ``status`` tells the caller what the upstream said); the caller translates it for the client
    (:func:`npcbridge.gateway.errors.upstream_protocol_error`).
    """
    attempt = dataclasses.replace(turn, state={}, started_at=time.perf_counter())
    attempt.model = model
    attempt.messages = request.messages
    parts: list[str] = []
    usage: Usage | None = None  # None: the gateway's count (turn.state) stands in
    finish = "stop"
    first_at: float | None = None
    async for event in turns.stream(attempt, model, request):
        if isinstance(event, TextDelta):
            first_at = first_at or time.perf_counter()
            parts.append(event.text)
        elif isinstance(event, StreamDone):
            finish = "length" if event.finish == "length" else "stop"
            usage = event.usage or usage
    model_id = str(attempt.state.get("served_model", model.id))
    text = "".join(parts)
    queue_ms = float(attempt.state.get("queue_ms", 0.0))
    result = turns.result(attempt, model_id, text, finish, usage, queue_ms, first_at, text)
    await turns.finish(attempt, result)
    return Completion(text, model_id, finish, result.usage, result.cost_usd)
