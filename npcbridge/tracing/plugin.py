"""Traces as a plugin: ``[extra.tracing]`` settings, a tracer provider of this server's own
(no global OpenTelemetry state) opened at start-up when an endpoint is set, one span per turn
from ``npcbridge_after_turn``, flushed at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..pipeline.turn import Turn, TurnResult
from ..plugin.api import PluginAPI
from ..plugin.specs import hookimpl
from .settings import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


class TracingUnavailable(RuntimeError):
    """Traces are configured but the ``otel`` extra is not installed."""


def otlp_provider(settings: TracingSettings) -> TracerProvider:
    """A tracer provider exporting in batches to ``settings.endpoint`` over OTLP/HTTP."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingUnavailable(
            "extra.tracing.endpoint is set but OpenTelemetry is not installed: "
            "pip install 'npcbridge[otel]'"
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    exporter = OTLPSpanExporter(
        endpoint=settings.endpoint,
        headers={k: v.get_secret_value() for k, v in settings.headers.items()},
        timeout=settings.timeout_s,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Plugin:
    """The spans of one server (none unless an endpoint is set or :meth:`trace_with` ran)."""

    def __init__(self, api: PluginAPI) -> None:
        self.api = api
        self.settings = TracingSettings()
        self.provider: Any = None
        self.tracer: Any = None

    @hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """``[extra.tracing]``."""
        register("tracing", TracingSettings)

    @hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        """Open the OTLP exporter when an endpoint is configured."""
        settings = api.plugin_settings("tracing")
        assert isinstance(settings, TracingSettings)
        self.settings = settings
        if settings.endpoint and self.tracer is None:
            self.trace_with(otlp_provider(settings))

    def trace_with(self, provider: Any) -> None:
        """Send this server's spans to ``provider`` (an OpenTelemetry ``TracerProvider``; a
        test passes one with an in-memory exporter)."""
        self.provider = provider
        self.tracer = provider.get_tracer("npcbridge")

    @hookimpl
    def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """The turn's span (nothing when traces are off)."""
        if self.tracer is None:
            return
        from .spans import record_turn

        record_turn(self.tracer, turn, result, self.provider_name(turn), self.settings.content)

    def provider_name(self, turn: Turn) -> str:
        """``gen_ai.provider.name``: ``groq`` for the OpenAI-compatible provider pointed at
        Groq, else the name the provider was registered under."""
        name = turn.model.provider if turn.model is not None else "openai"
        if name == "openai" and "groq" in (
            urlsplit(self.api.config.upstream.base_url).hostname or ""
        ):
            return "groq"
        return name

    @hookimpl
    async def npcbridge_shutdown(self, api: PluginAPI) -> None:
        """Export what is still batched (the exporter's own timeout bounds it)."""
        provider, self.provider, self.tracer = self.provider, None, None
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)
