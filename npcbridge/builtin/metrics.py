"""Serves ``GET /metrics`` and counts every finished turn (Prometheus, one registry per server)."""

from __future__ import annotations

from collections.abc import Callable

from ..gateway.metrics import CONTENT_TYPE
from ..pipeline.turn import Turn, TurnResult
from ..plugin.api import PluginAPI
from ..plugin.http import HttpRequest, HttpResponse
from ..plugin.specs import hookimpl


class Plugin:
    """Counts turns by finish and errors by code into the gateway's metrics."""

    def __init__(self, api: PluginAPI) -> None:
        self.api = api

    @hookimpl
    def npcbridge_register_routes(self, register: Callable[..., None], api: PluginAPI) -> None:
        """Serve the metrics on the WebSocket port (``[metrics]`` ``enabled``, ``path``): an
        admin route, so only trusted peers from the server's own origin read them."""
        settings = api.config.metrics
        metrics = api.metrics

        def render(request: HttpRequest) -> HttpResponse:
            return HttpResponse(200, metrics.render(), CONTENT_TYPE)

        if settings.enabled:
            register(settings.path, render, admin=True)

    @hookimpl
    def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Count the turn and, when it failed, its error code."""
        metrics = self.api.metrics
        metrics.turns.labels(result.finish, metrics.model(result.model)).inc()
        if result.error_code:
            metrics.errors.labels(result.error_code).inc()
