"""Serves ``GET /metrics`` and counts every finished turn (Prometheus, one registry per server)."""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl
from ..turn import Turn, TurnResult


class Plugin:
    """Counts turns by finish and errors by code into the gateway's metrics."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @hookimpl
    def npcbridge_startup(self, app: Any) -> None:
        """Register the metrics route on the WebSocket port."""
        settings = app.config.metrics
        if settings.enabled:
            app.http_routes[settings.path] = app.gateway.metrics.render

    @hookimpl
    def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Count the turn and, when it failed, its error code."""
        metrics = self.app.gateway.metrics
        metrics.turns.labels(result.finish, metrics.model(result.model)).inc()
        if result.error_code:
            metrics.errors.labels(result.error_code).inc()
