"""The gateway and a feature in process: retries, fallbacks, budgets and barks against a scripted
provider, no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from npcbridge.app import App
from npcbridge.pipeline.turn import Usage
from npcbridge.protocol.messages import BarksGenerate
from npcbridge.providers.base import UpstreamError
from npcbridge.testing.scripted import Script, ScriptedProvider, running_scripted_app, say

SMALL, LARGE = "llama-3.1-8b-instant", "llama-3.3-70b-versatile"


@pytest.fixture
async def app(scripted: ScriptedProvider) -> AsyncIterator[App]:
    """Retries without back-off, so a retried turn takes no time."""
    async with running_scripted_app(scripted, retry__base_delay_ms=0, retry__max_delay_ms=0) as app:
        yield app


async def test_a_retryable_failure_is_retried_on_the_same_model(
    scripted: ScriptedProvider, app: App
) -> None:
    scripted.script(UpstreamError(status=503), "Aye, lad.")
    said = await say(app, "blacksmith", "hello")
    assert said.end["text"] == "Aye, lad." and said.end["model"] == SMALL
    assert [r.model for r in scripted.requests] == [SMALL, SMALL]


async def test_retries_spent_on_one_model_move_to_its_fallback(
    scripted: ScriptedProvider, app: App
) -> None:
    scripted.script(*[UpstreamError(status=503)] * 3, model=SMALL)
    scripted.script("The big one answers.", model=LARGE)
    said = await say(app, "blacksmith", "hello")
    assert said.error is None and said.end["model"] == LARGE
    assert said.end["text"] == "The big one answers."
    assert [r.model for r in scripted.requests] == [SMALL, SMALL, SMALL, LARGE]


async def test_a_model_that_cannot_serve_falls_back_at_once(
    scripted: ScriptedProvider, app: App
) -> None:
    scripted.script(UpstreamError(status=404), model=SMALL)
    said = await say(app, "blacksmith", "hello")
    assert said.end["model"] == LARGE
    assert [r.model for r in scripted.requests] == [SMALL, LARGE]


async def test_a_refused_request_is_final(scripted: ScriptedProvider, app: App) -> None:
    scripted.script(UpstreamError(status=400), "never sent")
    said = await say(app, "blacksmith", "hello")
    assert said.types == ["reply.start", "error"]
    assert said.error is not None and said.error["code"] == "upstream_error"
    assert said.error["retryable"] is False and len(scripted.requests) == 1


async def test_a_budget_refuses_before_the_upstream_and_is_charged_the_real_usage(
    scripted: ScriptedProvider,
) -> None:
    async with running_scripted_app(scripted, budget__per_player_usd_per_day=0.001) as app:
        # the reservation (prompt + max_tokens at the chain's highest price) fits the budget;
        # the usage the upstream reports is what is charged, and it spends the budget
        scripted.script(Script(text="A long speech.", usage=Usage(1000, 20_000)))
        first = await say(app, "blacksmith", "tell me everything")
        cost = app.catalog.resolve(SMALL).cost_usd(1000, 20_000)
        assert first.end["cost_usd"] == pytest.approx(cost) and cost > 0.001
        second = await say(app, "blacksmith", "and more?", request_id="t-2")
        assert second.error is not None and second.error["code"] == "budget_exceeded"
        assert len(scripted.requests) == 1  # refused before reaching the upstream
        other = await say(app, "blacksmith", "hello", player="p2", request_id="t-3")
        assert other.error is None  # the budget is per player


class _Session:
    """What the barks handler uses of a connection."""

    id = "s-1"

    def __init__(self) -> None:
        self.npcs: dict[str, Any] = {}
        self.sent: list[dict[str, Any]] = []
        self.tasks: list[asyncio.Task[None]] = []

    def send(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)

    def track(self, request_id: Any, work: Any) -> None:
        self.tasks.append(asyncio.ensure_future(work))


async def _barks(app: App, message: dict[str, Any]) -> dict[str, Any]:
    session = _Session()
    await app.handlers["barks.generate"](session, BarksGenerate.model_validate(message))
    await asyncio.wait_for(asyncio.gather(*session.tasks), 5)
    (answer,) = session.sent
    return answer


async def test_barks_each_npc_gets_its_own_line_or_error_and_repeats_come_from_the_cache(
    scripted: ScriptedProvider,
) -> None:
    async with running_scripted_app(
        scripted, extra={"gameplay": {"barks": {"max_concurrency": 1}}}
    ) as app:
        scripted.script("Hot iron, fresh blades!", UpstreamError(status=400))
        message = {
            "type": "barks.generate",
            "id": "b-1",
            "npcs": [{"npc": "blacksmith"}, {"npc": "nobody"}, {"npc": "mage"}],
        }
        answer = await _barks(app, message)
        assert answer["type"] == "barks" and answer["id"] == "b-1"
        smith, nobody, mage = answer["results"]
        assert smith == {"npc": "blacksmith", "text": "Hot iron, fresh blades!"}
        assert nobody["error"]["code"] == "unknown_npc"
        assert mage["npc"] == "mage" and mage["error"]["code"] == "upstream_error"
        assert [r.kind for r in scripted.requests] == ["bark", "bark"]
        assert all(r.tools is None for r in scripted.requests)  # barks never act
        again = await _barks(app, {**message, "npcs": [{"npc": "blacksmith"}]})
        assert again["results"] == [
            {"npc": "blacksmith", "text": "Hot iron, fresh blades!", "cached": True}
        ]
        assert len(scripted.requests) == 2  # the repeat did not reach the upstream
