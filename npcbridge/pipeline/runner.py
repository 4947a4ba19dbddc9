"""The pipeline and gateway as plugins see them (:class:`npcbridge.plugin.api.Turns`).

Plugins that make requests of their own (barks, quests, scenes, summaries) run them through the
same pipeline and gateway as a ``say``; :class:`TurnRunner` is what the composition root hands
them, so that they depend on the small :class:`~npcbridge.plugin.api.Turns` protocol, not on the two
classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..gateway.audio import AudioGateway
from ..gateway.catalog import ModelEntry
from ..gateway.core import Gateway
from ..providers.base import ProviderRequest, StreamEvent
from .run import Pipeline
from .turn import Turn, TurnResult, Usage


class TurnRunner:
    """:class:`~npcbridge.plugin.api.Turns` over one server's pipeline (and the pipeline's
    gateway)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @property
    def gateway(self) -> Gateway:
        """The pipeline's gateway."""
        return self.pipeline.gateway

    @property
    def audio(self) -> AudioGateway:
        """Speech requests through the gateway (synthesis, transcription)."""
        return self.pipeline.gateway.audio

    async def run(self, turn: Turn) -> TurnResult | None:
        """Run ``turn`` through every turn hook and the gateway (see :meth:`Pipeline.run`)."""
        return await self.pipeline.run(turn)

    async def finish(self, turn: Turn, result: TurnResult) -> None:
        """The after-turn hooks and the turn's log line."""
        await self.pipeline.finish(turn, result)

    def stream(
        self, turn: Turn, model: ModelEntry, request: ProviderRequest
    ) -> AsyncIterator[StreamEvent]:
        """The gateway's events for ``request``."""
        return self.gateway.stream(turn, model, request)

    def result(
        self,
        turn: Turn,
        model_id: str,
        text: str,
        finish: str,
        usage: Usage | None,
        queue_ms: float,
        first_token_at: float | None,
        streamed_text: str,
    ) -> TurnResult:
        """The result of work run through :meth:`stream` (see :meth:`Pipeline.result`)."""
        return self.pipeline.result(
            turn, model_id, text, finish, usage, queue_ms, first_token_at, streamed_text, None
        )

    async def select_model(self, turn: Turn) -> ModelEntry:
        """The model the pipeline picks for ``turn`` (see :meth:`Pipeline.select_model`)."""
        return await self.pipeline.select_model(turn)

    async def budget_left(self, turn: Turn) -> float | None:
        """The smallest fraction left of the budgets with a limit that apply to ``turn``."""
        scopes = self.gateway.budget_scopes(turn)
        if not any(scope.limit_usd is not None for scope in scopes):
            return None
        return float(await self.gateway.budgets.remaining_fraction(scopes))

    def available(self, model_id: str) -> bool:
        """Whether the model's circuit breaker lets requests through."""
        return bool(self.gateway.breakers.available(model_id))
