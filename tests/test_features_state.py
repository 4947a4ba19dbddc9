"""NPC state over a real socket: npc.state, the turn (prompt, reply.end.state, the background
judgement), thresholds, world events, forgetting, restarts; on SQLite and a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from npcbridge.client import Client, NpcBridgeError
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply
from npcbridge.testing.redis_server import (  # noqa: F401
    redis_process,
    redis_session_url,
    redis_url,
)

GUARD = {
    "name": "Hilde",
    "description": "A town guard at the market gate.",
    "state": {"trust": 10, "affection": 0, "familiarity": 0, "volatility": 1.0},
}
MERCHANT = {"name": "Olaf", "description": "A fruit merchant.", "state": {"mood": "happy"}}
#: what the judging model is asked (the fake answers it from the model's own queue)
JUDGE_MODEL = "llama-3.1-8b-instant"


@pytest.fixture(params=["sqlite", "redis"])
async def state_bridge(
    request: pytest.FixtureRequest, fake_upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[Bridge]:
    """A server on each store backend."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    async with await start_bridge(
        fake_upstream, tmp_path, **({"store__url": url} if url else {})
    ) as b:
        yield b


async def state(client: Client, npc: str, player: str | None = "p1", **fields: Any) -> Any:
    """One ``npc.state`` request's answer."""
    frame: dict[str, Any] = {"type": "npc.state", "npc": npc, **fields}
    if player is not None:
        frame["player"] = player
    return await asyncio.wait_for(client.request(frame), 10)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """Poll ``check()`` until it answers something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.02)


async def ended(reply: Any) -> dict[str, Any]:
    """The ``reply.end`` of a streaming reply."""
    await asyncio.wait_for(reply.text(), 10)
    return dict(reply.end)


async def next_unsolicited(client: Client, kind: str = "state") -> dict[str, Any]:
    """The next frame of ``kind`` that belongs to no request."""
    while True:
        frame = await asyncio.wait_for(client.unsolicited.get(), 5)
        if frame.get("type") == kind:
            return frame


async def test_get_set_nudge_start_from_the_persona_and_hold_the_ranges(
    state_bridge: Bridge,
) -> None:
    async with await state_bridge.client() as client:
        assert "state" in client.welcome["features"]
        await client.define_npc("guard", GUARD)
        got = await state(client, "guard")
        assert got["type"] == "state" and got["reason"] == "get"
        assert got["mood"] == "neutral" and got["intensity"] == 0
        assert got["relationship"] == {"trust": 10.0, "affection": 0.0, "familiarity": 0.0}
        got = await state(client, "guard", op="set", values={"trust": -20, "mood": "angry",
                                                             "intensity": 0.6})  # fmt: skip
        assert got["relationship"]["trust"] == -20 and got["mood"] == "angry"
        got = await state(client, "guard", op="nudge", values={"trust": -150, "affection": 7})
        assert got["relationship"]["trust"] == -100 and got["relationship"]["affection"] == 7
        # the mood is the NPC's own: another player sees it, with their own relationship
        other = await state(client, "guard", player="p2")
        assert other["mood"] == "angry" and other["relationship"]["trust"] == 10
        alone = await state(client, "guard", player=None)
        assert "relationship" not in alone and "player" not in alone


async def test_state_and_world_events_over_the_http_transport(bridge: Bridge) -> None:
    from tests.http_helpers import HELLO, Transport

    http = Transport(bridge.server.port)
    key = (await http.call("POST", "/v1/sessions", HELLO)).json()["session"]
    await http.post(key, {"type": "npc.define", "id": "d", "npc": "guard", "persona": GUARD})
    watch = {"type": "npc.state", "id": 1, "npc": "guard", "player": "p1", "op": "watch",
             "watch": [{"key": "trust", "below": 0, "name": "wary"}]}  # fmt: skip
    answer = (await http.post(key, watch, "?wait=5")).json()["messages"]
    assert answer[0]["type"] == "state" and answer[0]["watching"] == ["wary"]
    event = {"type": "world.event", "id": 2, "npc": "guard", "player": "p1", "react": True,
             "text": "p1 stole a loaf of bread"}  # fmt: skip
    posted = (await http.post(key, event, "?wait=10")).json()
    assert [m["type"] for m in posted["messages"]] == ["ok"]  # the event's own answer, last
    # the whole session in order: the crossing, the streamed reaction, then the ok
    messages = (await http.poll(key, "?cursor=2&merge=1")).json()["messages"]
    kinds = [m["type"] for m in messages]
    assert kinds == ["state", "reply.start", "reply.delta", "reply.end", "ok"], kinds
    assert messages[0]["crossed"][0]["name"] == "wary" and messages[1]["parent"] == 2


async def test_bad_state_requests_are_refused_clearly(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("guard", GUARD)
        await client.define_npc("plain", {"name": "Plain"})
        for fields, code, words in [
            ({"npc": "plain"}, "bad_request", "keeps no state"),
            ({"npc": "nobody"}, "unknown_npc", "unknown npc"),
            ({"npc": "guard", "op": "set"}, "bad_request", "'values'"),
            ({"npc": "guard", "op": "nudge", "values": {"trust": 5}, "player": None},
             "bad_request", "need 'player'"),
            ({"npc": "guard", "op": "watch", "watch": [{"key": "trust"}]},
             "bad_request", "exactly one of"),
            ({"npc": "guard", "values": {"mood": "elated"}, "op": "set"},
             "bad_request", "mood"),
        ]:  # fmt: skip
            player = fields.pop("player", "p1")
            with pytest.raises(NpcBridgeError) as err:
                await state(client, player=player, **fields)
            assert err.value.code == code and words in err.value.message, err.value.message
        for prefix in ("a", "b", "a"):  # 32 names; the same names again replace theirs
            many = [{"key": "trust", "below": -i, "name": f"{prefix}{i}"} for i in range(16)]
            await state(client, "guard", op="watch", watch=many)
        with pytest.raises(NpcBridgeError, match="at most 32"):
            await state(client, "guard", op="watch", watch=[{"key": "mood"}])
        assert await client.ping()  # the connection lives


async def test_a_turn_carries_the_state_into_the_prompt_and_out_in_reply_end(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.script(Reply(text="not json"), model=JUDGE_MODEL)
    async with await start_bridge(fake_upstream, tmp_path) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("guard", GUARD)
            await state(client, "guard", op="set", values={"trust": -70, "mood": "angry",
                                                           "intensity": 0.9})  # fmt: skip
            reply = await client.say("guard", "p1", "Let me pass.", effects={"trust": 5})
            end = await ended(reply)
            assert end["state"]["relationship"] == {
                "trust": -65.0, "affection": 0.0, "familiarity": 1.0,
            }  # fmt: skip
            assert end["state"]["mood"] == "angry"
            system = fake_upstream.requests[0].messages[0]["content"]
            assert "You are Hilde" in system.split("Right now")[0]  # after the persona
            assert "Right now you feel very angry." in system
            assert "do not trust p1 at all" in system and "-70" not in system
            # a persona without state: no state in the prompt or in reply.end
            await client.define_npc("plain", {"name": "Plain"})
            end = await ended(await client.say("plain", "p1", "hi"))
            assert "state" not in end
            assert "Right now" not in fake_upstream.requests[-1].messages[0]["content"]


async def test_a_plugin_renders_the_state_its_own_way(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    plugins = ("sample_plugins:StateWords",)
    async with await start_bridge(fake_upstream, tmp_path, plugins=plugins) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("guard", GUARD)
            await ended(await client.say("guard", "p1", "Hello."))
    system = fake_upstream.requests[0].messages[0]["content"]
    assert "STATE-HOOK mood=neutral trust=10 player=p1" in system
    assert "Right now" not in system  # the first answer wins; the feature's own is the last


async def test_an_action_moves_the_state_as_the_persona_declares(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    arrest = {"name": "arrest", "description": "Arrest the player."}
    guard = {**GUARD, "actions": [arrest],
             "state": {**GUARD["state"], "on_action": {"arrest": {"trust": -40, "mood": "angry",
                                                                   "intensity": 0.7}}}}  # fmt: skip
    async with await start_bridge(fake_upstream, tmp_path, upstream__offline=False) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("guard", guard)
            reply = await client.say("guard", "p1", "[[tool:arrest:{}]] I stole it.")
            end = await ended(reply)
    assert [a["name"] for a in end["actions"]] == ["arrest"]
    assert end["state"]["relationship"]["trust"] == -30  # 10 - 40
    assert end["state"]["mood"] == "angry" and end["state"]["intensity"] == 0.7


async def test_the_judgement_runs_after_the_reply_and_moves_the_state(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.script(
        Reply(json={"mood": "angry", "intensity": 0.8, "trust": -30, "affection": -4}),
        model=JUDGE_MODEL,
    )
    async with await start_bridge(fake_upstream, tmp_path) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("guard", {**GUARD, "model": "llama-3.3-70b-versatile"})
            watch = [{"key": "trust", "below": 5, "name": "wary"}, {"key": "mood"}]
            answer = await state(client, "guard", op="watch", watch=watch)
            assert answer["watching"] == ["mood", "wary"]
            reply = await client.say("guard", "p1", "You are a useless fool.")
            end = await ended(reply)
            # reply.end does not wait for the judgement: only the turn's familiarity is in it
            assert end["state"]["relationship"]["trust"] == 10
            pushed = await next_unsolicited(client)
            judged = next(r for r in fake_upstream.requests if r.model == JUDGE_MODEL)
            assert "useless fool" in judged.messages[1]["content"]
            assert pushed["reason"] == "judgement" and "id" not in pushed
            # the step is held to judge_max_step (10): 10 - 10 = 0, below 5
            assert pushed["relationship"]["trust"] == 0 and pushed["mood"] == "angry"
            assert sorted(c["name"] for c in pushed["crossed"]) == ["mood", "wary"]
            await asyncio.sleep(0.1)
            assert client.unsolicited.empty()  # one frame: the change and its crossings
            wary = next(c for c in pushed["crossed"] if c["name"] == "wary")
            assert wary == {"name": "wary", "key": "trust", "value": 0.0, "below": 5.0,
                            "direction": "entered"}  # fmt: skip
            # leaving the band is a crossing too
            await state(client, "guard", op="nudge", values={"trust": 20})
            back = await next_unsolicited(client)
            assert back["crossed"][0]["direction"] == "left" and back["reason"] == "nudge"
            gone = await state(client, "guard", op="unwatch")
            assert gone["watching"] == []


async def test_the_turns_connection_hears_of_the_judgement_without_a_watch(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.script(
        Reply(json={"mood": "happy", "intensity": 0.5, "trust": 4, "affection": 6}),
        model=JUDGE_MODEL,
    )
    async with await start_bridge(fake_upstream, tmp_path) as bridge:
        async with await bridge.client() as client, await bridge.client() as other:
            await client.define_npc("guard", {**GUARD, "model": "llama-3.3-70b-versatile"})
            seen: list[tuple[str, str | None, dict[str, Any]]] = []
            client.on_state(lambda npc, player, body, frame: seen.append((npc, player, body)))
            await ended(await client.say("guard", "p1", "Thank you for your help."))
            pushed = await next_unsolicited(client)
            assert pushed["reason"] == "judgement" and "crossed" not in pushed
            assert pushed["relationship"] == {"trust": 14.0, "affection": 6.0, "familiarity": 1.0}
            assert client.known[("guard", "p1")]["mood"] == "happy"
            assert [s[2]["relationship"]["trust"] for s in seen] == [10.0, 14.0]
            await asyncio.sleep(0.1)
            assert other.unsolicited.empty()  # another connection watches nothing


async def test_the_judgement_is_charged_to_the_players_budget(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    from npcbridge.gateway.budget import today

    fake_upstream.script(Reply(json={"mood": "happy", "trust": 1}), model=JUDGE_MODEL)
    async with await start_bridge(
        fake_upstream, tmp_path, budget__per_player_usd_per_day=1.0
    ) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("guard", {**GUARD, "model": "llama-3.3-70b-versatile"})
            end = await ended(await client.say("guard", "p1", "Thanks, friend."))
            await next_unsolicited(client)  # the judgement's change
        store = bridge.app.store
        assert store is not None
        key = f"budget:player:p1:{today()}"
        spent = await eventually(
            lambda: _above(store.get_counter(key), float(end["cost_usd"]) + 1e-12)
        )
    assert spent, "the judgement's cost was not charged to the player's budget"


async def _above(value: Awaitable[float], floor: float) -> float | None:
    got = await value
    return got if got > floor else None


async def test_offline_rules_judge_the_exchange_at_once(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, upstream__offline=True) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("guard", GUARD)
            end = await ended(await client.say("guard", "p1", "Shut up, you idiot."))
            assert end["state"]["mood"] == "angry"
            assert end["state"]["relationship"]["trust"] == 7  # 10 - 3
            end = await ended(await client.say("guard", "p1", "Thank you, friend."))
            assert end["state"]["relationship"]["affection"] == -2  # -5 + 3
    assert fake_upstream.requests == []


async def test_the_mood_fades_into_the_resting_mood(state_bridge: Bridge) -> None:
    async with await state_bridge.client() as client:
        await client.define_npc(
            "merchant", {**MERCHANT, "state": {"mood": "happy", "mood_half_life_s": 0.2}}
        )
        await state(client, "merchant", op="nudge", values={"mood": "afraid", "intensity": 0.8})
        await asyncio.sleep(0.2)
        half = await state(client, "merchant")
        assert half["mood"] == "afraid" and 0.2 < half["intensity"] < 0.41
        await asyncio.sleep(0.8)
        rested = await state(client, "merchant")
        assert rested["mood"] == "happy" and rested["intensity"] == 0


async def test_a_world_event_is_remembered_moves_the_state_and_gets_reactions(
    state_bridge: Bridge,
) -> None:
    async with await state_bridge.client() as client:
        await client.define_npc("guard", GUARD)
        await client.define_npc("merchant", MERCHANT)
        await state(client, "guard", op="watch", watch=[{"key": "trust", "below": -5}])
        exchange = await client.world_event(
            "p1 stole an apple from the stall", npcs=["guard", "merchant"],
            witnesses=["guard"], player="p1", importance=5, react=True,
        )  # fmt: skip
        replies = [r async for r in exchange]
        assert [r.id for r in replies] == [f"{exchange.id}/0"]
        assert (await ended(replies[0]))["npc"] == "guard"
        done = exchange.done
        assert done["type"] == "ok" and done["npcs"] == ["guard", "merchant"]
        assert done["reactions"] == [{"id": f"{exchange.id}/0", "npc": "guard", "finish": "stop"}]
        guard = await state(client, "guard")
        merchant = await state(client, "merchant")
        assert guard["relationship"]["trust"] == -10  # 10 - 20: saw it
        assert merchant["relationship"]["trust"] == -10  # 0 - 20 / 2: heard of it
        assert guard["mood"] == "angry"
        # the teller hears of every NPC moved: the guard's frame carries its crossing
        crossing = await next_unsolicited(client)
        assert crossing["npc"] == "guard" and crossing["reason"] == "event"
        assert crossing["crossed"][0]["direction"] == "entered"
        heard_of = await next_unsolicited(client)
        assert heard_of["npc"] == "merchant" and "crossed" not in heard_of
        assert client.known[("merchant", "p1")]["relationship"]["trust"] == -10
        memories = await client.memory_query("guard", "p1")
        assert memories[0]["text"] == "You saw this happen: p1 stole an apple from the stall"
        heard = await client.memory_query("merchant", "p1")
        assert heard[0]["text"].startswith("You heard that:")


async def test_a_world_event_reaches_everyone_in_a_scene_and_refuses_bad_targets(
    bridge: Bridge,
) -> None:
    async with await bridge.client() as client:
        await client.define_npc("guard", GUARD)
        await client.define_npc("merchant", MERCHANT)
        await client.scene_start("market", ["guard", "merchant"], "p1")
        exchange = await client.world_event("A dragon flies over the market", scene="market")
        assert [r async for r in exchange] == []
        assert exchange.done["npcs"] == ["guard", "merchant"]
        assert (await state(client, "guard"))["mood"] == "afraid"
        # scene turns carry the state into their prompt too
        exchange = await client.scene_say("market", "Hilde, did you see that?", max_replies=1)
        assert len([r async for r in exchange]) == 1
        scene_prompt = bridge.fake.requests[-1].messages[0]["content"]
        assert "Right now you feel quite afraid." in scene_prompt
        for fields, words in [
            ({"scene": "nowhere"}, "no such scene"),
            ({"npc": "guard", "scene": "market"}, "exactly one of"),
            ({"npc": "guard", "witnesses": ["merchant"]}, "witness"),
            ({"npcs": ["guard", "nobody"]}, "unknown npc"),
        ]:
            refused = await client.world_event("something", **fields)
            with pytest.raises(NpcBridgeError, match=words):
                await asyncio.wait_for(anext(aiter(refused)), 10)


async def test_memory_forget_erases_the_relationship(state_bridge: Bridge) -> None:
    async with await state_bridge.client() as client:
        await client.define_npc("guard", GUARD)
        await state(client, "guard", op="set", values={"trust": -90, "mood": "angry",
                                                       "intensity": 1})  # fmt: skip
        await state(client, "guard", player="p2", op="set", values={"trust": 50})
        assert await client.memory_forget("p1") == 1
        fresh = await state(client, "guard")
        assert fresh["relationship"]["trust"] == 10  # the persona's start again
        assert fresh["mood"] == "angry"  # the NPC's own mood is nobody's personal data
        assert (await state(client, "guard", player="p2"))["relationship"]["trust"] == 50


async def test_a_config_persona_declares_its_state(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    npcs = {"gate_guard": {"name": "Hilde", "state": {"trust": -20, "mood": "sad",
                                                      "intensity": 0.5}}}  # fmt: skip
    async with await start_bridge(fake_upstream, tmp_path, npcs=npcs) as bridge:
        async with await bridge.client() as client:
            got = await state(client, "gate_guard")
    assert got["relationship"]["trust"] == -20 and got["mood"] == "sad"


async def test_memory_forget_cancels_a_running_judgement_of_the_player(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    fake_upstream.script(
        Reply(json={"mood": "angry", "intensity": 0.9, "trust": -10}, stall_s=0.5),
        model=JUDGE_MODEL,
    )
    async with await start_bridge(fake_upstream, tmp_path) as bridge:
        async with await bridge.client() as client:
            await client.define_npc("guard", {**GUARD, "model": "llama-3.3-70b-versatile"})
            await ended(await client.say("guard", "p1", "You fool."))
            await fake_upstream.wait_for(lambda: len(fake_upstream.requests) == 2)
            await client.memory_forget("p1")
            await asyncio.sleep(0.8)  # the judge would have answered by now
            after = await state(client, "guard")
    assert after["relationship"] == {"trust": 10.0, "affection": 0.0, "familiarity": 0.0}
    assert after["mood"] == "neutral"  # nothing of the judgement was written


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_state_survives_a_restart(
    fake_upstream: FakeUpstream, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else str(tmp_path / "s.db")
    for _ in range(2):
        async with await start_bridge(fake_upstream, tmp_path, store__url=url) as bridge:
            async with await bridge.client() as client:
                await client.define_npc("guard", GUARD)
                got = await state(client, "guard", op="nudge", values={"trust": -25})
    assert got["relationship"]["trust"] == -40  # 10 - 25 - 25: the first nudge was kept


async def test_a_store_outage_answers_retryable_and_the_turn_still_ends(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    with redis_process() as redis:
        async with await start_bridge(fake_upstream, tmp_path, store__url=redis.url) as bridge:
            async with await bridge.client() as client:
                await client.define_npc("guard", GUARD)
                redis.kill()
                with pytest.raises(NpcBridgeError) as err:
                    await state(client, "guard")
                assert err.value.code == "internal" and err.value.retryable
                assert "unavailable" in err.value.message
                # the NPC answers without its state rather than not at all
                end = await ended(await client.say("guard", "p1", "Hello?"))
                assert end["finish"] == "stop"
                redis.start()
                got = await eventually(lambda: _get_or_none(client))
                assert got is not None and got["relationship"]["trust"] == 10


async def _get_or_none(client: Client) -> Any:
    try:
        return await state(client, "guard")
    except NpcBridgeError:
        return None
