"""Serves ``GET /metrics`` and counts every finished turn (Prometheus, one registry per server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hookspecs import hookimpl
from ..turn import Turn, TurnResult


class Plugin:
    """Counts turns by finish and errors by code into the gateway's metrics."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @hookimpl
    def npcbridge_register_routes(self, register: Callable[..., None], app: Any) -> None:
        """Serve the metrics on the WebSocket port (``[metrics]`` ``enabled``, ``path``)."""
        settings = app.config.metrics
        if settings.enabled:
            register(settings.path, app.gateway.metrics.render)

    @hookimpl
    def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Count the turn and, when it failed, its error code."""
        metrics = self.app.gateway.metrics
        metrics.turns.labels(result.finish, metrics.model(result.model)).inc()
        if result.error_code:
            metrics.errors.labels(result.error_code).inc()
