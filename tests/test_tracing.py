"""Traces: one ``chat {model}`` span per turn with the GenAI conventions' attributes, content
only when asked, exported over a real OTLP/HTTP request to a receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from npcbridge.providers.base import UpstreamError
from npcbridge.testing.scripted import ScriptedProvider, running_scripted_app, say
from tests.http_helpers import serving_app

PLUGIN = "npcbridge.tracing.plugin"
SECRET_LINE = "the password is swordfish"


def in_memory(app) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app.plugins.get_plugin(PLUGIN).trace_with(provider)
    return exporter


async def test_a_turn_is_one_chat_span_with_gen_ai_attributes_and_no_content():
    provider = ScriptedProvider()
    async with running_scripted_app(provider) as app:
        exporter = in_memory(app)
        provider.script(UpstreamError(status=503), "Aye, lad.")
        said = await asyncio.wait_for(say(app, "blacksmith", SECRET_LINE, max_tokens=50), 10)
    assert said.end["finish"] == "stop"
    (span,) = exporter.get_finished_spans()
    model = said.end["model"]
    assert span.name == f"chat {model}"
    a = dict(span.attributes)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == model
    assert a["gen_ai.usage.output_tokens"] == said.end["usage"]["output_tokens"]
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["npcbridge.cost_usd"] == pytest.approx(said.end["cost_usd"])
    assert a["gen_ai.response.time_to_first_chunk"] == pytest.approx(
        said.end["timing"]["ttft_ms"] / 1000
    )
    events = [event.name for event in span.events]
    assert events == ["gen_ai.first_chunk", "npcbridge.retry"]
    assert span.end_time - span.start_time == pytest.approx(
        said.end["timing"]["total_ms"] * 1e6, rel=0.01
    )
    # content is off by default: neither the line, the reply nor the player is in the span
    flat = json.dumps({k: str(v) for k, v in a.items()})
    assert "swordfish" not in flat and "Aye" not in flat and "p1" not in flat


async def test_content_goes_into_spans_only_when_configured():
    provider = ScriptedProvider()
    async with running_scripted_app(provider, extra__tracing={"content": True}) as app:
        exporter = in_memory(app)
        provider.script("Aye, lad.")
        await asyncio.wait_for(say(app, "blacksmith", SECRET_LINE), 10)
    (span,) = exporter.get_finished_spans()
    inputs = json.loads(span.attributes["gen_ai.input.messages"])
    assert inputs[-1]["parts"][0]["content"] == SECRET_LINE
    assert "Aye, lad." in span.attributes["gen_ai.output.messages"]
    assert span.attributes["npcbridge.player"] == "p1"


async def test_a_failed_turn_has_an_error_status():
    provider = ScriptedProvider()
    async with running_scripted_app(provider, retry__max_attempts=1) as app:
        exporter = in_memory(app)
        provider.script(*[UpstreamError(status=400)] * 4)
        said = await asyncio.wait_for(say(app, "blacksmith", "hello"), 10)
    assert said.error is not None
    spans = exporter.get_finished_spans()
    assert spans[0].status.status_code is StatusCode.ERROR
    assert spans[0].attributes["error.type"] == said.error["code"]
    assert [e.name for e in spans[0].events] == ["npcbridge.failed"]


async def test_spans_reach_an_otlp_http_receiver():
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    receiver = web.Application()
    receiver.router.add_post("/v1/traces", traces)
    async with serving_app(receiver) as port:
        provider = ScriptedProvider()
        endpoint = f"http://127.0.0.1:{port}/v1/traces"
        async with running_scripted_app(provider, extra__tracing={"endpoint": endpoint}) as app:
            provider.script("Aye, lad.")
            said = await asyncio.wait_for(say(app, "blacksmith", "hello"), 10)
        # closing the app flushed the batch
        spans = [
            span
            for message in received
            for resource in message.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        assert [span.name for span in spans] == [f"chat {said.end['model']}"]
        attributes = {kv.key: kv.value for kv in spans[0].attributes}
        assert attributes["gen_ai.operation.name"].string_value == "chat"
        assert "gen_ai.input.messages" not in attributes
        service = received[0].resource_spans[0].resource.attributes
        names = {kv.key: kv.value.string_value for kv in service}
        assert names["service.name"] == "npcbridge"


async def test_no_tracer_without_an_endpoint(scripted_app):
    assert scripted_app.plugins.get_plugin(PLUGIN).tracer is None


async def test_an_endpoint_without_the_otel_extra_stops_start_up(monkeypatch):
    # as if `pip install 'npcbridge[otel]'` had not been run
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    endpoint = {"endpoint": "http://127.0.0.1:9/v1/traces"}
    with pytest.raises(Exception, match=r"pip install 'npcbridge\[otel\]'"):
        async with running_scripted_app(ScriptedProvider(), extra__tracing=endpoint):
            pass
