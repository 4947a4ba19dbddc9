"""Scenes without a socket: the turn-taking policy alone (who is addressed, relevance, who
speaks next), and the scene manager against a connection with only its declared members."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from typing import Any

from scene_helpers import FakeConnection

from npcbridge.features.scenes.ranking import addressed, choose_first, choose_next, relevance
from npcbridge.features.scenes.scene import Scene
from npcbridge.protocol.messages import Persona


def _scene(**personas: dict[str, Any]) -> Scene:
    return Scene(
        name="s",
        player="p1",
        player_name="Rowan",
        personas={k: Persona.model_validate(v) for k, v in personas.items()},
        context={},
        max_replies=3,
        transcript=deque(),
        spoken=Counter(),
    )


def test_policy() -> None:
    scene = _scene(
        smith={"name": "Brom Ironfist", "description": "Forges swords and armour."},
        mage={"name": "Aelindra", "description": "Studies ancient magic and curses."},
    )
    assert addressed("Hey Brom, and you Aelindra", scene.personas) == "smith"
    assert addressed("aelindra? brom?", scene.personas) == "mage"
    assert addressed("Bromley is not Brom", scene.personas) == "smith"
    assert addressed("nobody here", scene.personas) is None
    assert relevance("Are these armour swords good?", scene.personas["smith"]) == 2
    assert choose_first(scene, "What about the curses and magic?") == "mage"
    scene.spoken["smith"] = 2
    assert choose_first(scene, "Hello") == "mage"
    assert choose_next(scene, "mage", "Ask Brom.", min_relevance=2) == "smith"
    assert choose_next(scene, "mage", "Good day.", min_relevance=2) is None
    assert choose_next(scene, "mage", "Fine swords and armour here.", min_relevance=2) == "smith"


async def test_scenes_use_only_the_declared_connection_interface() -> None:
    """Scenes live in the connection's plugin_state and the exchange is the task track returns;
    nothing is written onto the connection and its in-flight table is never read."""
    from npcbridge.features.scenes.manager import SceneManager
    from npcbridge.features.scenes.scene import ConnectionScenes
    from npcbridge.features.scenes.settings import SceneSettings
    from npcbridge.protocol.messages import SceneSay, SceneStart

    class Services:
        @staticmethod
        def persona(npc: str, npcs: dict[str, Persona]) -> Persona:
            return npcs[npc]

    manager = SceneManager(Services(), SceneSettings())  # type: ignore[arg-type]
    conn = FakeConnection()
    manager.start(conn, SceneStart(id=1, scene="tavern", player="p1", npcs=["innkeeper"]))
    assert list(conn.plugin_state(ConnectionScenes).by_name) == ["tavern"]
    manager.remove(conn, "tavern", "innkeeper", 2)
    # nobody left to answer: the exchange ends at once, without a turn
    await manager.say(conn, SceneSay(id=3, scene="tavern", text="hello?"))
    scene = manager.get(conn, "tavern", 4)
    assert scene.task is conn.tracked[3]
    await asyncio.wait_for(conn.tracked[3], 5)
    assert conn.sent[-1] == {
        "type": "scene.done",
        "id": 3,
        "scene": "tavern",
        "replies": [],
        "stopped": "quiet",
    }
    manager.end(conn, "tavern", 5)
    assert conn.plugin_state(ConnectionScenes).by_name == {}


async def test_a_scene_turn_carries_the_players_line_in_its_typed_field() -> None:
    """The player's words travel in ``turn.player_text`` (``text`` has the "Name: " label); an
    NPC answering an NPC has none; nothing of it is kept in ``turn.state``."""
    from npcbridge.features.scenes.manager import SceneManager
    from npcbridge.features.scenes.settings import SceneSettings
    from npcbridge.pipeline.turn import Turn
    from npcbridge.protocol.messages import SceneSay, SceneStart

    turns: list[Turn] = []

    class Turns:
        @staticmethod
        async def run(turn: Turn) -> None:
            turns.append(turn)
            text = "Aelindra, what say you?" if len(turns) == 1 else "Nothing, innkeeper."
            turn.emit({"type": "reply.end", "id": turn.request_id, "text": text, "finish": "stop"})

    class Services:
        turns = Turns()

        @staticmethod
        def persona(npc: str, npcs: dict[str, Persona]) -> Persona:
            return npcs[npc]

    manager = SceneManager(Services(), SceneSettings())  # type: ignore[arg-type]
    conn = FakeConnection()
    conn.npcs["mage"] = Persona.model_validate({"name": "Aelindra", "description": "An elf mage."})
    manager.start(conn, SceneStart(id=1, scene="inn", player="p1", npcs=["innkeeper", "mage"]))
    await manager.say(conn, SceneSay(id=2, scene="inn", text="Tilda, any rumours?", max_replies=2))
    await asyncio.wait_for(conn.tracked[2], 5)
    assert [turn.npc for turn in turns] == ["innkeeper", "mage"]
    first, second = turns
    assert first.player_text == "Tilda, any rumours?" and first.text.endswith(
        ": Tilda, any rumours?"
    )
    assert second.player_text is None and second.text == "Tilda: Aelindra, what say you?"
    assert all("player_text" not in turn.state for turn in turns)


async def test_a_scene_reply_whose_turn_raises_ends_and_the_exchange_is_done() -> None:
    """A sub-reply whose turn fails unexpectedly after ``reply.start`` ends with ``internal``
    and the exchange still answers ``scene.done``."""
    from npcbridge.features.scenes.manager import SceneManager
    from npcbridge.features.scenes.settings import SceneSettings
    from npcbridge.pipeline.turn import Turn
    from npcbridge.protocol.messages import SceneSay, SceneStart

    class Turns:
        @staticmethod
        async def run(turn: Turn) -> None:
            turn.emit({"type": "reply.start", "id": turn.request_id, "npc": turn.npc})
            raise RuntimeError("a turn bug")

    class Services:
        turns = Turns()

        @staticmethod
        def persona(npc: str, npcs: dict[str, Persona]) -> Persona:
            return npcs[npc]

    manager = SceneManager(Services(), SceneSettings())  # type: ignore[arg-type]
    conn = FakeConnection()
    manager.start(conn, SceneStart(id=1, scene="inn", player="p1", npcs=["innkeeper"]))
    await manager.say(conn, SceneSay(id=2, scene="inn", text="Tilda?"))
    await asyncio.wait_for(conn.tracked[2], 5)
    assert [f["type"] for f in conn.sent] == ["reply.start", "error", "scene.done"]
    error = conn.sent[1]
    assert error["id"] == "2/1" and error["code"] == "internal" and "refused" not in error
    assert conn.sent[-1] == {
        "type": "scene.done",
        "id": 2,
        "scene": "inn",
        "replies": [{"id": "2/1", "npc": "innkeeper", "finish": "error"}],
        "stopped": "error",
    }
    assert manager.get(conn, "inn", 3).task is None
