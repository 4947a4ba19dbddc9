"""NPC memory end to end: window, facts, forget/query, summaries, restart, ranking."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from npcbridge import hookimpl
from npcbridge.client import Client, NpcBridgeError
from npcbridge.gateway.catalog import ModelEntry
from npcbridge.memory.plugin import Plugin, TurnMemory
from npcbridge.memory.ranking import Weights, lexical_relevance, rank
from npcbridge.memory.tokens import estimate_tokens, fit_window
from npcbridge.pipeline.run import StopReply
from npcbridge.pipeline.turn import Turn
from npcbridge.protocol.messages import Persona
from npcbridge.stores import MemoryRecord, TurnRecord, open_store
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply
from npcbridge.testing.redis_server import redis_session_url, redis_url  # noqa: F401

SMITH = {"name": "Brom", "description": "A blacksmith, rough but kind."}


def history(request: Any) -> list[tuple[str, str]]:
    """(role, content) of a recorded upstream request, without the persona prompt."""
    return [(m["role"], m["content"]) for m in request.messages[1:]]


async def eventually(check: Any, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """Poll the async ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            assert value, "condition not met in time"
            return value
        await asyncio.sleep(0.02)


async def talk(client: Client, npc: str, player: str, text: str, **options: Any) -> dict[str, Any]:
    reply = await client.say(npc, player, text, **options)
    await reply.text()
    assert reply.end is not None
    return reply.end


async def test_window_replays_complete_turns_only(store_bridge: Bridge) -> None:
    bridge = store_bridge
    async with await bridge.client() as client:
        assert "memory" in client.welcome["features"]
        await client.define_npc("smith", SMITH)
        await talk(client, "smith", "p1", "[[reply:Aye, the forge is hot.]] Is it hot?")
        reply = await client.say("smith", "p1", "[[slow]] tell me a long story")
        async for _ in reply:
            await reply.cancel()
            break
        await reply.text()
        assert reply.end["finish"] == "cancelled"
        await talk(client, "smith", "p2", "other player")
        await talk(client, "smith", "p1", "And the key?")
    last = bridge.fake.requests[-1]
    assert history(last) == [
        ("user", "[[reply:Aye, the forge is hot.]] Is it hot?"),
        ("assistant", "Aye, the forge is hot."),
        ("user", "And the key?"),
    ]
    store = bridge.app.store
    assert store is not None
    statuses = [t.status for t in await store.recent_turns("smith", "p1", 10)]
    assert statuses == ["complete", "cancelled", "complete"]


async def test_failed_turn_is_stored_as_error_not_replayed(bridge: Bridge) -> None:
    bridge.fake.script(Reply(status=400))
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        with pytest.raises(NpcBridgeError):
            await (await client.say("smith", "p1", "boom")).text()
        await talk(client, "smith", "p1", "hello")
    assert history(bridge.fake.requests[-1]) == [("user", "hello")]
    assert bridge.app.store is not None
    turns = await bridge.app.store.recent_turns("smith", "p1", 10)
    assert [(t.user_text, t.status) for t in turns] == [("boom", "error"), ("hello", "complete")]


async def test_facts_recalled_queried_and_forgotten(store_bridge: Bridge) -> None:
    bridge = store_bridge
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        ok = await client.request(
            {"type": "memory.add", "npc": "smith", "player": "p1", "text": "p1 owes Brom 5 gold",
             "importance": 8}
        )  # fmt: skip
        assert ok == {"type": "ok", "id": ok["id"]}
        await client.request({"type": "memory.add", "npc": "smith", "text": "The mine is shut"})
        await talk(client, "smith", "p1", "Do I owe you gold?")
        system = [m for m in bridge.fake.requests[-1].messages if m["role"] == "system"]
        assert len(system) == 2 and "p1 owes Brom 5 gold" in system[1]["content"]
        assert "The mine is shut" in system[1]["content"]
        # another player sees the world fact but not p1's debt
        await talk(client, "smith", "p2", "news?")
        memo = bridge.fake.requests[-1].messages[1]["content"]
        assert "The mine is shut" in memo and "gold" not in memo

        answer = await client.request(
            {"type": "memory.query", "npc": "smith", "player": "p1", "text": "gold debt"}
        )
        assert answer["type"] == "memory"
        assert [i["text"] for i in answer["items"]] == ["p1 owes Brom 5 gold", "The mine is shut"]
        assert answer["items"][0]["kind"] == "fact" and answer["items"][0]["importance"] == 8
        assert answer["items"][0]["score"] > answer["items"][1]["score"]

        forgot = await client.request({"type": "memory.forget", "npc": "smith", "player": "p1"})
        assert forgot["type"] == "ok" and forgot["removed"] == 2  # one turn + one fact
        answer = await client.request({"type": "memory.query", "npc": "smith", "player": "p1"})
        assert [i["text"] for i in answer["items"]] == ["The mine is shut"]
        await talk(client, "smith", "p1", "Who am I?")
        assert [r for r, _ in history(bridge.fake.requests[-1])] == ["system", "user"]
        everywhere = await client.request({"type": "memory.forget", "player": "p2"})
        assert everywhere["removed"] == 1


async def test_memory_add_is_validated(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {"type": "memory.add", "npc": "smith", "text": "x", "importance": 11}
            )
        assert info.value.code == "bad_request"


async def test_window_trimmed_to_token_budget(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    # each exchange costs (4 + 28) + (4 + 13) = 49 tokens; a 100-token window keeps two
    async with await start_bridge(
        fake_upstream, tmp_path, extra__memory={"window_max_tokens": 100}
    ) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            for i in range(4):
                await talk(client, "smith", "p1", f"[[reply:{'r' * 48}{i}]] {'u' * 48}{i}")
            await talk(client, "smith", "p1", "now")
        got = [c for r, c in history(fake_upstream.requests[-1]) if r == "assistant"]
        assert got == ["r" * 48 + "2", "r" * 48 + "3"]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_old_turns_are_summarised_in_the_background(
    fake_upstream: FakeUpstream, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    memory = {"window_max_turns": 2, "summary_batch": 2, "summary_model": "openai/gpt-oss-20b"}
    fake_upstream.script(
        Reply(text="The player is called Ann and wants a sword."), model="openai/gpt-oss-20b"
    )
    store_url = (
        request.getfixturevalue("redis_url") if backend == "redis" else str(tmp_path / "s.db")
    )
    async with await start_bridge(
        fake_upstream, tmp_path, extra__memory=memory, store__url=store_url
    ) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            # window of 2: after the 5th turn, turns 1 and 2 lie beyond it -> one summary
            for text in ["I am Ann.", "I want a sword.", "A sharp one.", "By Friday.", "Thanks."]:
                await talk(client, "smith", "p1", text)
            await fake_upstream.wait_for(
                lambda: any(r.model == "openai/gpt-oss-20b" for r in fake_upstream.requests)
            )
            summary_req = next(r for r in fake_upstream.requests if r.model == "openai/gpt-oss-20b")
            assert "summarise" in summary_req.messages[0]["content"].lower()
            assert "p1: I am Ann.\nBrom: Well met." in summary_req.messages[1]["content"]
            assert "p1: I want a sword." in summary_req.messages[1]["content"]
            assert "A sharp one" not in summary_req.messages[1]["content"]  # still in the window
            store = b.app.store
            assert store is not None
            await eventually(lambda: store.get_watermark("smith", "p1"))
            await talk(client, "smith", "p1", "Remember me?")
        memo = fake_upstream.requests[-1].messages[1]
        assert memo["role"] == "system"
        assert "The player is called Ann and wants a sword." in memo["content"]
        items = await store.memories("smith", "p1")
        assert [(m.kind, m.importance) for m in items] == [("summary", 5)]


async def test_shutdown_waits_for_running_summary(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    memory = {"window_max_turns": 1, "summary_batch": 1, "summary_model": "openai/gpt-oss-20b"}
    fake_upstream.script(Reply(text="Slowly written.", stall_s=0.5), model="openai/gpt-oss-20b")
    b = await start_bridge(fake_upstream, tmp_path, extra__memory=memory)
    async with await b.client() as client:
        await client.define_npc("smith", SMITH)
        await talk(client, "smith", "p1", "one")
        await talk(client, "smith", "p1", "two")
        await talk(client, "smith", "p1", "three")  # "one" leaves the 1-turn window
    await fake_upstream.wait_for(lambda: len(fake_upstream.requests) == 4)
    await b.close()  # returns only once the summary is stored
    store = await open_store(str(tmp_path / "bridge.db"))
    try:
        assert [m.text for m in await store.memories("smith", "p1")] == ["Slowly written."]
    finally:
        await store.close()


async def test_memory_survives_restart(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    b = await start_bridge(fake_upstream, tmp_path)
    async with await b.client() as client:
        await client.define_npc("smith", SMITH)
        await talk(client, "smith", "p1", "[[reply:Welcome back, Ann.]] I am Ann")
        await client.request(
            {"type": "memory.add", "npc": "smith", "player": "p1", "text": "Ann is a knight"}
        )
    await b.close()
    async with await start_bridge(fake_upstream, tmp_path) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            await talk(client, "smith", "p1", "who am I?")
        req = fake_upstream.requests[-1]
        assert "Ann is a knight" in req.messages[1]["content"]
        assert ("assistant", "Welcome back, Ann.") in history(req)


# ------------------------------------------------------------------ units


def test_recall_ranking_follows_generative_agents_scoring() -> None:
    """Hand-computed: recency = 0.995 ** hours since last recall; importance / 10;
    relevance = word-set cosine, min-max normalised; all weights 1."""
    now = 1_000_000.0
    h = 3600.0
    memories = [
        # id, text, importance, hours since last recall
        MemoryRecord("n", "p", "fact", "the player likes red apples", 2, now, now - 0 * h, id=1),
        MemoryRecord("n", "p", "fact", "the player stole a sword", 9, now, now - 300 * h, id=2),
        MemoryRecord("n", "p", "summary", "talked about the weather", 5, now, now - 100 * h, id=3),
        MemoryRecord("n", "p", "fact", "the player fears wolves", 5, now, now - 400 * h, id=4),
    ]
    query = "do you sell apples or a sword?"
    # query words {sell, apples, sword}; memory 1 {player, likes, red, apples}: 1/sqrt(3*4);
    # memory 2 {player, stole, sword}: 1/sqrt(3*3); 3 and 4 share nothing
    rel = lexical_relevance(query, [m.text for m in memories])
    assert rel == pytest.approx([1 / 12**0.5, 1 / 3, 0.0, 0.0])
    rel_n = [0.8660254, 1.0, 0.0, 0.0]  # min-max: divided by the max (1/3), min is 0
    rec = [1.0, 0.995**300, 0.995**100, 0.995**400]  # 1, .2223, .6058, .1347
    imp = [0.2, 0.9, 0.5, 0.5]
    # with the query:  1: 1 + .2 + .866 = 2.066   2: .2223 + .9 + 1 = 2.1223
    #                  3: .6058 + .5 = 1.1058     4: .1347 + .5 = .6347
    expected = {1: 2.0660254, 2: 0.995**300 + 1.9, 3: 0.995**100 + 0.5, 4: 0.995**400 + 0.5}
    assert [rec[i] + imp[i] + rel_n[i] for i in range(4)] == pytest.approx(
        [expected[k] for k in (1, 2, 3, 4)]
    )
    scored = rank(memories, now, rel, Weights())
    assert [s.memory.id for s in scored] == [2, 1, 3, 4]
    assert [s.score for s in scored] == pytest.approx([expected[k] for k in (2, 1, 3, 4)])
    # without a query only recency and importance count: 1: 1.2, 2: 1.1223, 3: 1.1058, 4: .6347
    assert [s.memory.id for s in rank(memories, now, None)] == [1, 2, 3, 4]
    # a heavier recency weight lets the weather summary (recalled 100 h ago) overtake the theft
    heavy = rank(memories, now, None, Weights(recency=3.0))
    assert [s.memory.id for s in heavy] == [1, 3, 2, 4]  # 3.2, 2.3174, 1.5669, .904


def test_fit_window_keeps_newest_whole_exchanges() -> None:
    turns = [TurnRecord("n", "p", "a" * 40, "b" * 40, "complete", 0.0, id=i) for i in range(1, 6)]
    per_turn = 2 * (4 + estimate_tokens("a" * 40))
    assert [t.id for t in fit_window(turns, per_turn * 2 + 1)] == [4, 5]
    assert fit_window(turns, per_turn - 1) == []


async def test_window_budget_follows_the_chosen_model(tmp_path: Path) -> None:
    class FakeApp:
        store = None

    plugin = Plugin(FakeApp())  # type: ignore[arg-type]
    turn = Turn("1", "n", Persona(name="N"), "p", "hi", "s", max_tokens=100)
    turn.messages = [{"role": "system", "content": "x" * 400}, {"role": "user", "content": "hi"}]
    turn.model = ModelEntry(id="tiny", context_window=1000)
    # context 1000, other messages (4+100)+(4+1)=109, reply 100 -> 791; share 0.5 -> 500
    assert plugin.window_budget(turn, TurnMemory()) == 500
    turn.model = ModelEntry(id="tiny", context_window=400)
    assert plugin.window_budget(turn, TurnMemory()) == 191  # 400 - 109 - 100 < 200
    turn.model = ModelEntry(id="tiny", context_window=256)
    assert plugin.window_budget(turn, TurnMemory()) == 47


async def test_store_failure_degrades_to_no_memory(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        await talk(client, "smith", "p1", "first")
        assert bridge.app.store is not None
        await bridge.app.store.close()  # the disk went away under the server
        end = await talk(client, "smith", "p1", "still talking?")
        assert end["finish"] == "stop"
        assert history(bridge.fake.requests[-1]) == [("user", "still talking?")]
        with pytest.raises(NpcBridgeError) as info:
            await client.request({"type": "memory.add", "npc": "smith", "text": "x"})
        assert info.value.code == "internal" and info.value.retryable
        assert (await client.ping())["type"] == "pong"


async def test_cancel_during_the_final_store_write_still_ends_the_reply(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bridge.app.store
    assert store is not None
    original = store.append_turn
    writing = asyncio.Event()

    async def slow_append(record: TurnRecord) -> int:
        writing.set()
        await asyncio.sleep(0.3)
        return await original(record)

    monkeypatch.setattr(store, "append_turn", slow_append)
    async with await bridge.client() as client:
        await client.define_npc("smith", SMITH)
        reply = await client.say("smith", "p1", "[[reply:Done and dusted.]]")
        await writing.wait()
        await reply.cancel()
        text = await reply.text()
        assert reply.end is not None and text == "Done and dusted."
        assert reply.end["finish"] == "stop"
    assert [t.status for t in await store.recent_turns("smith", "p1", 5)] == ["complete"]


class _Censor:
    """Stops any reply that mentions 'secret' (as a moderation plugin would)."""

    @hookimpl
    def npcbridge_transform_delta(self, turn: Turn, text: str) -> str | None:
        if "secret" in text:
            raise StopReply("filtered", "no secrets")
        return None


async def test_filtered_turn_is_stored_as_filtered_not_replayed(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, plugins=(f"{__name__}:_Censor",)) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            end = await talk(client, "smith", "p1", "[[reply:The secret is out.]]")
            assert end["finish"] == "filtered"
            await talk(client, "smith", "p1", "hm?")
        assert history(fake_upstream.requests[-1]) == [("user", "hm?")]
        assert b.app.store is not None
        turns = await b.app.store.recent_turns("smith", "p1", 5)
        assert [t.status for t in turns] == ["filtered", "complete"]


class _BrokenRelevance:
    @hookimpl
    def npcbridge_memory_relevance(self, query: str, texts: list[str], api: Any) -> list[float]:
        raise RuntimeError("embedding service down")


class _ReverseRelevance:
    """Scores the first-added memory highest, whatever the words say."""

    @hookimpl
    def npcbridge_memory_relevance(self, query: str, texts: list[str], api: Any) -> list[float]:
        return [float(len(texts) - i) for i in range(len(texts))]


@pytest.mark.parametrize(
    ("plugin", "first"), [("_ReverseRelevance", "apples"), ("_BrokenRelevance", "sword")]
)
async def test_relevance_hook_decides_and_failures_fall_back_to_lexical(
    fake_upstream: FakeUpstream, tmp_path: Path, plugin: str, first: str
) -> None:
    async with await start_bridge(fake_upstream, tmp_path, plugins=(f"{__name__}:{plugin}",)) as b:
        async with await b.client() as client:
            await client.define_npc("smith", SMITH)
            for text in ("p1 likes apples", "p1 lost a sword"):
                await client.request(
                    {"type": "memory.add", "npc": "smith", "player": "p1", "text": text}
                )
            answer = await client.request(
                {"type": "memory.query", "npc": "smith", "player": "p1", "text": "sword"}
            )
        assert first in answer["items"][0]["text"]
