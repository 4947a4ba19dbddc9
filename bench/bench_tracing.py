"""Benchmark: what traces cost per turn, off and on.

    python -m bench.bench_tracing [--turns 2000] [--rounds 5]

Turns run through the whole pipeline in this process (``npcbridge.testing.scripted``: every hook,
the gateway, an in-memory SQLite store, a scripted provider answering at once), so the turn's
own work is what is measured, without sockets. Three servers side by side, taken in turns
round after round (the median round is reported): the tracing plugin not loaded at all, loaded
but off (no endpoint: the default), and on with an in-memory exporter (the span is built and
handed over; OTLP export happens on the exporter's own thread and is not in the turn). Also
the cost of the off plugin's ``npcbridge_after_turn`` call alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.common import append_result, command_line, now
from npcbridge.pipeline.turn import Turn
from npcbridge.protocol.messages import Persona
from npcbridge.testing.scripted import ScriptedProvider, say, start_scripted_app
from npcbridge.tracing.spans import record_turn

PLUGIN = "npcbridge.tracing.plugin"
COLUMNS = [
    "date", "turns per round", "rounds", "µs/turn, plugin not loaded", "µs/turn, tracing off",
    "µs/turn, tracing on (in-memory exporter)", "off − not loaded µs", "off hook call ns",
    "one span built µs", "command",
]  # fmt: skip


async def start(mode: str) -> Any:
    provider = ScriptedProvider()
    overrides: dict[str, Any] = {}
    if mode == "absent":
        overrides["disable_plugins"] = [PLUGIN]
    app = await start_scripted_app(provider, **overrides)
    if mode == "on":
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        app.plugins.get_plugin(PLUGIN).trace_with(tracer_provider)
        app.bench_exporter = exporter
    return app


async def round_us(app: Any, turns: int) -> float:
    """Microseconds per turn over ``turns`` sequential turns (fresh players: no history)."""
    started = time.perf_counter()
    for i in range(turns):
        said = await say(app, "blacksmith", "hello there", player=f"p{i}", request_id=i)
        assert said.end is not None and said.end["finish"] == "stop"
    elapsed = time.perf_counter() - started
    exporter = getattr(app, "bench_exporter", None)
    if exporter is not None:
        assert len(exporter.get_finished_spans()) >= turns
        exporter.clear()
    return elapsed / turns * 1e6


def span_us(app: Any, result: Any, spans: int = 20_000) -> float:
    """Microseconds to build and hand over one turn's span (what tracing on adds to a turn)."""
    turn = Turn(
        request_id=1,
        npc="blacksmith",
        persona=Persona(name="Brom"),
        player="p1",
        text="hello there",
        session_id="s",
        model=app.catalog.entry(result.model),
    )
    plugin = app.plugins.get_plugin(PLUGIN)
    started = time.perf_counter()
    for _ in range(spans):
        record_turn(plugin.tracer, turn, result, "groq", False)
    elapsed = time.perf_counter() - started
    app.bench_exporter.clear()
    return elapsed / spans * 1e6


def hook_ns(app: Any, calls: int = 200_000) -> float:
    """Nanoseconds per call of the off plugin's after-turn hook."""
    plugin = app.plugins.get_plugin(PLUGIN)
    hook = plugin.npcbridge_after_turn
    started = time.perf_counter_ns()
    for _ in range(calls):
        hook(None, None)
    return (time.perf_counter_ns() - started) / calls


async def main(turns: int, rounds: int) -> None:
    apps = {mode: await start(mode) for mode in ("absent", "off", "on")}
    try:
        for app in apps.values():  # warm-up
            await round_us(app, 200)
        results: dict[str, list[float]] = {mode: [] for mode in apps}
        order = list(apps)
        for n in range(rounds):
            # each round in another order, so that no mode always runs after the same one
            for mode in order[n % len(order) :] + order[: n % len(order)]:
                results[mode].append(await round_us(apps[mode], turns))
        medians = {mode: statistics.median(values) for mode, values in results.items()}
        off_call = hook_ns(apps["off"])
        said = await say(apps["on"], "blacksmith", "hello there", player="span", request_id="s")
        span_cost = span_us(apps["on"], said.result)
    finally:
        for app in apps.values():
            await app.close()
    print("rounds:", {mode: [round(v, 1) for v in values] for mode, values in results.items()})
    print(
        f"µs/turn: plugin not loaded {medians['absent']:.1f}, off {medians['off']:.1f}, "
        f"on {medians['on']:.1f}; off hook call {off_call:.0f} ns; one span {span_cost:.1f} µs",
        flush=True,
    )
    append_result(
        "6. Traces: cost per turn",
        COLUMNS,
        [now(), turns, rounds, f"{medians['absent']:.1f}", f"{medians['off']:.1f}",
         f"{medians['on']:.1f}", f"{medians['off'] - medians['absent']:+.1f}", f"{off_call:.0f}",
         f"{span_cost:.1f}", f"`{command_line()}`"],
    )  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.rounds))
