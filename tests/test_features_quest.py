"""quest.generate over a real socket: strict JSON, repaired, plain-text fallback, failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from npcbridge.client import NpcBridgeError
from npcbridge.features.quest.parse import parse_json, parse_text
from npcbridge.features.quest.schema import (
    DIFFICULTIES,
    QuestInvalid,
    quest_schema,
    validate_quest,
)
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream, Reply

GOOD_HARD = {
    "title": "The Deep Forge",
    "description": "Something hammers in the closed mine at night.",
    "objectives": [
        "Get the key from Brom",
        "Enter the mine",
        "Follow the hammering",
        "Light the old forge",
        "Silence the ghost smith",
    ],
    "rewards": ["250 gold", "Brom's old hammer"],
}
GOOD_EASY = {
    "title": "Lost Hammer",
    "description": "Brom dropped his hammer by the well.",
    "objectives": ["Find the hammer by the well"],
    "rewards": ["20 gold"],
}
SEED_TEXT = """标题: 幽灵矿井
描述: 每到夜里，封闭的矿井里都会传来打铁声。
目标:
1. 从布罗姆那里拿到钥匙
2. 进入矿井
3. 找到旧熔炉
奖励: 120 金币, 布罗姆的旧锤子
"""


@pytest.fixture
async def strict_bridge(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Bridge]:
    """A server whose quests use a model the catalog marks json_schema-capable."""
    async with await start_bridge(
        fake_upstream, tmp_path, extra__gameplay={"quest": {"model": "openai/gpt-oss-20b"}}
    ) as b:
        yield b


@pytest.fixture
async def plain_bridge(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Bridge]:
    """A server whose quests use a model without strict structured output (json_object)."""
    async with await start_bridge(
        fake_upstream, tmp_path, extra__gameplay={"quest": {"model": "llama-3.1-8b-instant"}}
    ) as b:
        yield b


async def _quest(bridge: Bridge, **fields: Any) -> dict[str, Any]:
    async with await bridge.client() as client:
        assert "quest" in client.welcome["features"]
        return await client.request({"type": "quest.generate", "theme": "a haunted mine", **fields})


async def test_strict_json_schema_quest_validates(strict_bridge: Bridge) -> None:
    fake = strict_bridge.fake
    fake.script(Reply(json={**GOOD_HARD, "xp": 400}))
    answer = await _quest(
        strict_bridge,
        difficulty="hard",
        npc="blacksmith",
        fields={"xp": {"type": "integer", "minimum": 0}},
    )
    assert answer["type"] == "quest" and answer["source"] == "json"
    quest = answer["quest"]
    assert quest["objectives"] == GOOD_HARD["objectives"] and quest["xp"] == 400
    assert quest["difficulty"] == "hard" and quest["giver"] == "blacksmith"
    assert answer["model"] == "openai/gpt-oss-20b" and answer["cost_usd"] > 0
    (request,) = fake.requests
    fmt = request.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"title", "description", "objectives", "rewards", "xp"}
    assert "Brom" in request.body["messages"][0]["content"]  # the giver's persona


async def test_invalid_quest_is_repaired_once(plain_bridge: Bridge) -> None:
    fake = plain_bridge.fake
    fake.script(Reply(json={**GOOD_HARD, "objectives": ["Enter the mine"]}), Reply(json=GOOD_HARD))
    answer = await _quest(plain_bridge, difficulty="hard")
    assert answer["source"] == "repaired"
    assert len(answer["quest"]["objectives"]) == 5
    first, second = fake.requests
    assert first.body["response_format"] == {"type": "json_object"}
    repair = second.body["messages"][-1]["content"]
    assert "objectives" in repair and "5 to 6" in repair
    assert second.body["messages"][-2]["role"] == "assistant"
    assert answer["usage"]["input_tokens"] == sum(r.usage["prompt_tokens"] for r in fake.requests)


async def test_plain_text_layout_fallback(plain_bridge: Bridge) -> None:
    fake = plain_bridge.fake
    fake.script(Reply(text="Sure! Here is a quest."), Reply(text=SEED_TEXT))
    answer = await _quest(plain_bridge, difficulty="medium")
    assert answer["source"] == "text"
    quest = answer["quest"]
    assert quest["title"] == "幽灵矿井"
    assert quest["objectives"] == ["从布罗姆那里拿到钥匙", "进入矿井", "找到旧熔炉"]
    assert quest["rewards"] == ["120 金币", "布罗姆的旧锤子"]
    assert len(fake.requests) == 2


async def test_plain_text_asked_for_as_last_resort(plain_bridge: Bridge) -> None:
    fake = plain_bridge.fake
    fake.script(Reply(text="no"), Reply(text="still no"), Reply(text=SEED_TEXT))
    answer = await _quest(plain_bridge, difficulty="medium")
    assert answer["source"] == "text"
    third = fake.requests[2].body
    assert "response_format" not in third
    assert "标题" in third["messages"][0]["content"]


async def test_no_valid_quest_is_an_error(plain_bridge: Bridge) -> None:
    plain_bridge.fake.script(Reply(text="no"), Reply(text="no"), Reply(text="标题: only a title"))
    with pytest.raises(NpcBridgeError) as info:
        await _quest(plain_bridge, difficulty="easy")
    assert info.value.code == "upstream_error" and info.value.retryable


async def test_strict_model_that_refuses_the_schema_falls_back_to_json_object(
    strict_bridge: Bridge,
) -> None:
    strict_bridge.fake.script(Reply(status=400), Reply(json=GOOD_EASY))
    answer = await _quest(strict_bridge, difficulty="easy")
    assert answer["source"] == "json"
    assert strict_bridge.fake.requests[-1].body["response_format"] == {"type": "json_object"}


async def test_bad_fields_are_bad_requests(plain_bridge: Bridge) -> None:
    for fields in ({"title": {"type": "string"}}, {"xp": {"type": "no-such-type"}}):
        with pytest.raises(NpcBridgeError) as info:
            await _quest(plain_bridge, fields=fields)
        assert info.value.code == "bad_request"
    with pytest.raises(NpcBridgeError) as info:
        await _quest(plain_bridge, difficulty="legendary")
    assert info.value.code == "bad_request"
    assert plain_bridge.fake.requests == []


async def test_unknown_giver_is_unknown_npc(plain_bridge: Bridge) -> None:
    with pytest.raises(NpcBridgeError) as info:
        await _quest(plain_bridge, npc="nobody")
    assert info.value.code == "unknown_npc"


async def test_failed_quest_names_the_rule_not_the_text_fallback(plain_bridge: Bridge) -> None:
    short = {
        "title": "Rats",
        "description": "Rats in the cellar.",
        "objectives": ["Kill the rats", "Tell the cook"],
        "rewards": ["80 gold"],
    }
    plain_bridge.fake.script(Reply(json=short), Reply(json=short), Reply(text="I cannot."))
    async with await plain_bridge.client() as client:
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {"type": "quest.generate", "theme": "rats", "difficulty": "medium"}
            )
    message = str(info.value)
    assert "objectives: a medium quest has 3 to 4 objectives, not 2" in message, message
    assert "标题" not in message  # not the plain-text parser's complaint
    assert info.value.retryable  # a model samples: asking again may succeed


async def test_quest_field_errors_do_not_quote_the_answer(plain_bridge: Bridge) -> None:
    quest = {
        "title": "Rats",
        "description": "Rats in the cellar.",
        "objectives": ["Kill the rats"],
        "rewards": ["20 gold"],
        "xp": "UPSTREAM-TEXT",
    }
    plain_bridge.fake.script(Reply(json=quest), Reply(json=quest), Reply(text="no"))
    async with await plain_bridge.client() as client:
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {"type": "quest.generate", "theme": "rats", "fields": {"xp": {"type": "integer"}}}
            )
    assert "xp: breaks its schema's 'type' rule" in str(info.value)
    assert "UPSTREAM-TEXT" not in str(info.value)


# ---------------------------------------------------------------- pure functions


def test_difficulties_are_concrete_and_ordered() -> None:
    easy, medium, hard = (DIFFICULTIES[d] for d in ("easy", "medium", "hard"))
    assert easy.objectives[1] < medium.objectives[0] and medium.objectives[1] < hard.objectives[0]
    assert easy.gold[1] <= medium.gold[0] and medium.gold[1] <= hard.gold[0]


def test_validation_checks_counts_gold_and_game_fields() -> None:
    assert validate_quest(GOOD_EASY, "easy", {})["title"] == "Lost Hammer"
    with pytest.raises(QuestInvalid, match="gold"):
        validate_quest({**GOOD_EASY, "rewards": ["5000 gold"]}, "easy", {})
    with pytest.raises(QuestInvalid, match="xp"):
        validate_quest(GOOD_EASY, "easy", {"xp": {"type": "integer"}})
    with pytest.raises(QuestInvalid, match="title"):
        validate_quest({**GOOD_EASY, "title": ""}, "easy", {})
    # fields nobody declared are not passed on
    assert "secret" not in validate_quest({**GOOD_EASY, "secret": 1}, "easy", {})


def test_the_gold_rule_names_the_range_not_the_amount() -> None:
    rewards = ["5123 gold", "7349 gold"]
    with pytest.raises(QuestInvalid) as info:
        validate_quest({**GOOD_EASY, "rewards": rewards}, "easy", {})
    message = str(info.value)
    assert message == "rewards: an easy quest's gold lies between 10 and 50", message


def test_parsers() -> None:
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json('Here: {"a": 1} done') == {"a": 1}
    with pytest.raises(QuestInvalid):
        parse_json("nothing")
    english = parse_text(
        "**Title:** Rats\nDescription: Rats in the cellar.\nObjectives:\n- Kill the rats\n"
        "Rewards: 20 gold; a cheese\nxp: 30",
        {"xp": {"type": "integer"}},
    )
    assert english == {
        "title": "Rats",
        "description": "Rats in the cellar.",
        "objectives": ["Kill the rats"],
        "rewards": ["20 gold", "a cheese"],
        "xp": 30,
    }
    assert validate_quest(english, "easy", {"xp": {"type": "integer"}})["xp"] == 30


def test_schema_is_strict_all_the_way_down() -> None:
    schema = quest_schema({"loc": {"type": "object", "properties": {"x": {"type": "number"}}}})
    assert schema["properties"]["loc"]["additionalProperties"] is False
    assert schema["properties"]["loc"]["required"] == ["x"]
