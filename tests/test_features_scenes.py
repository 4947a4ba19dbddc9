"""Group scenes over a real socket: turn-taking, the bound, interrupts, add/remove."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from typing import Any

import pytest

from npcbridge.client import Client, NpcBridgeError
from npcbridge.features.scenes.ranking import addressed, choose_first, choose_next, relevance
from npcbridge.features.scenes.scene import Scene
from npcbridge.protocol.messages import Persona
from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply

INNKEEPER = {
    "name": "Tilda",
    "description": "Keeps the tavern; hears every rumour about travellers and ale.",
    "knowledge": ["The mine road is flooded."],
}


async def _start(client: Client, **extra: Any) -> None:
    await client.define_npc("innkeeper", INNKEEPER)
    answer = await client.request(
        {
            "type": "scene.start",
            "scene": "tavern",
            "player": "p1",
            "player_name": "Rowan",
            "npcs": ["blacksmith", "mage", "innkeeper"],
            **extra,
        }
    )
    assert answer["type"] == "ok"


async def _exchange(client: Client, request_id: str | int) -> list[dict[str, Any]]:
    """Frames of one scene exchange, up to and including its scene.done."""
    frames = []
    while True:
        frame = await asyncio.wait_for(client.unsolicited.get(), 10)
        frames.append(frame)
        if frame["type"] == "scene.done" and frame["id"] == request_id:
            return frames


def _replies(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["id"], f["npc"]) for f in frames if f["type"] == "reply.start"]


async def test_addressed_npc_answers_first_and_the_chain_stops_at_the_bound(
    bridge: Bridge,
) -> None:
    fake = bridge.fake
    fake.script(
        Reply(text="Haunted? Brom, tell the child what you heard."),
        Reply(text="Aye. Aelindra saw the lights herself."),
        Reply(text="Brom exaggerates, as always."),
        Reply(text="never used: the bound stops the chain first"),
    )
    async with await bridge.client() as client:
        assert "scenes" in client.welcome["features"]
        await _start(client, max_replies=3)
        await client.send(
            {
                "type": "scene.say",
                "id": "s-1",
                "scene": "tavern",
                "text": "Aelindra, is it haunted?",
            }
        )
        frames = await _exchange(client, "s-1")
    assert _replies(frames) == [("s-1/1", "mage"), ("s-1/2", "blacksmith"), ("s-1/3", "mage")]
    done = frames[-1]
    assert done["stopped"] == "bound"
    assert [r["id"] for r in done["replies"]] == ["s-1/1", "s-1/2", "s-1/3"]
    assert {r["finish"] for r in done["replies"]} == {"stop"}
    ends = [f for f in frames if f["type"] == "reply.end"]
    assert [e["text"] for e in ends] == [
        "Haunted? Brom, tell the child what you heard.",
        "Aye. Aelindra saw the lights herself.",
        "Brom exaggerates, as always.",
    ]
    assert all(e["scene"] == "tavern" and e["parent"] == "s-1" for e in ends)
    for reply_id, _ in _replies(frames):
        deltas = [f["text"] for f in frames if f["type"] == "reply.delta" and f["id"] == reply_id]
        assert "".join(deltas) == next(e["text"] for e in ends if e["id"] == reply_id)
    assert len(fake.requests) == 3
    # the second speaker saw the scene: who is present, the player's line, the mage's answer
    messages = fake.requests[1].body["messages"]
    assert "Aelindra" in messages[0]["content"] and "Rowan (the player)" in messages[0]["content"]
    assert messages[-2] == {"role": "user", "content": "Rowan: Aelindra, is it haunted?"}
    assert messages[-1]["content"].startswith("Aelindra: Haunted?")
    # the mage's own earlier line comes back to her as an assistant message
    assert {"role": "assistant", "content": "Haunted? Brom, tell the child what you heard."} in (
        fake.requests[2].body["messages"]
    )


async def test_quiet_when_nobody_is_addressed_or_relevant(bridge: Bridge) -> None:
    bridge.fake.script(Reply(text="Hmm."))
    async with await bridge.client() as client:
        await _start(client)
        await client.send(
            {"type": "scene.say", "id": 7, "scene": "tavern", "text": "Tilda, an ale please."}
        )
        frames = await _exchange(client, 7)
    assert _replies(frames) == [("7/1", "innkeeper")]
    assert frames[-1]["stopped"] == "quiet"


async def test_relevance_then_least_spoken(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client, max_replies=1)
        await client.send(
            {"type": "scene.say", "id": "a", "scene": "tavern", "text": "Any rumour about the ale?"}
        )
        assert _replies(await _exchange(client, "a")) == [("a/1", "innkeeper")]
        # nothing relevant: whoever spoke least (the blacksmith, first in scene order)
        await client.send({"type": "scene.say", "id": "b", "scene": "tavern", "text": "Hello!"})
        assert _replies(await _exchange(client, "b")) == [("b/1", "blacksmith")]
        await client.send({"type": "scene.say", "id": "c", "scene": "tavern", "text": "Hello!"})
        assert _replies(await _exchange(client, "c")) == [("c/1", "mage")]
        # "to" wins over everything
        await client.send(
            {"type": "scene.say", "id": "d", "scene": "tavern", "text": "Ale?", "to": "blacksmith"}
        )
        assert _replies(await _exchange(client, "d")) == [("d/1", "blacksmith")]


async def test_interrupt_stops_the_exchange(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client)
        await client.send(
            {"type": "scene.say", "id": "s", "scene": "tavern", "text": "Brom! [[slow]]"}
        )
        first = await asyncio.wait_for(client.unsolicited.get(), 5)
        assert first["type"] == "reply.start" and first["npc"] == "blacksmith"
        delta = await asyncio.wait_for(client.unsolicited.get(), 5)
        assert delta["type"] == "reply.delta" and delta["id"] == "s/1"
        ok = await client.request({"type": "scene.interrupt", "scene": "tavern"})
        assert ok["type"] == "ok"
        frames = await _exchange(client, "s")
        end = next(f for f in frames if f["type"] == "reply.end")
        assert end["finish"] == "cancelled" and end["id"] == "s/1"
        assert frames[-1]["stopped"] == "interrupted"
        assert frames[-1]["replies"] == [{"id": "s/1", "npc": "blacksmith", "finish": "cancelled"}]
        await bridge.fake.wait_disconnect(timeout=3)
        # the scene stays open
        await client.send({"type": "scene.say", "id": "t", "scene": "tavern", "text": "Tilda?"})
        assert _replies(await _exchange(client, "t"))[0] == ("t/1", "innkeeper")


async def test_new_line_from_the_player_interrupts_the_npcs(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client)
        await client.send(
            {"type": "scene.say", "id": 1, "scene": "tavern", "text": "Brom [[slow]]"}
        )
        assert (await asyncio.wait_for(client.unsolicited.get(), 5))["type"] == "reply.start"
        await client.send({"type": "scene.say", "id": 2, "scene": "tavern", "text": "Tilda?"})
        frames = await _exchange(client, 1)
        assert frames[-1]["stopped"] == "interrupted"
        frames = await _exchange(client, 2)
        assert _replies(frames)[0] == ("2/1", "innkeeper")


async def test_add_and_remove_npcs_while_the_scene_runs(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await _start(client)
        await client.define_npc("guard", {"name": "Captain Varn", "description": "The guard."})
        assert (await client.request({"type": "scene.add", "scene": "tavern", "npc": "guard"}))[
            "type"
        ] == "ok"
        await client.send(
            {"type": "scene.say", "id": "g", "scene": "tavern", "text": "Captain, any news?"}
        )
        assert _replies(await _exchange(client, "g"))[0] == ("g/1", "guard")
        # removing the NPC that is speaking cancels its reply; the exchange goes on
        await client.send(
            {"type": "scene.say", "id": "r", "scene": "tavern", "text": "Varn [[slow]]"}
        )
        assert (await asyncio.wait_for(client.unsolicited.get(), 5))["npc"] == "guard"
        await client.request({"type": "scene.remove", "scene": "tavern", "npc": "guard"})
        frames = await _exchange(client, "r")
        assert frames[-1]["replies"][0] == {"id": "r/1", "npc": "guard", "finish": "cancelled"}
        assert frames[-1]["stopped"] != "interrupted"
        with pytest.raises(NpcBridgeError) as info:
            await client.request({"type": "scene.remove", "scene": "tavern", "npc": "guard"})
        assert info.value.code == "bad_request"
        assert (await client.request({"type": "scene.end", "scene": "tavern"}))["type"] == "ok"
        with pytest.raises(NpcBridgeError):
            await client.request({"type": "scene.end", "scene": "tavern"})


async def test_scene_messages_are_validated_strictly(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        bad_starts = [
            {"scene": "x", "player": "p1", "npcs": []},
            {"scene": "x", "player": "p1", "npcs": ["mage", "mage"]},
            {"scene": "", "player": "p1", "npcs": ["mage"]},
            {"scene": "x", "player": "p1", "npcs": ["mage"], "max_replies": 0},
            {"scene": "x", "player": "p1", "npcs": ["mage"], "max_replies": "2"},
        ]
        for bad in bad_starts:
            with pytest.raises(NpcBridgeError) as info:
                await client.request({"type": "scene.start", **bad})
            assert info.value.code == "bad_request", bad
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {"type": "scene.start", "scene": "x", "player": "p1", "npcs": ["ghost"]}
            )
        assert info.value.code == "unknown_npc"
        for bad in (
            {"scene": "nope", "text": "hi"},
            {"scene": "x", "text": ""},
            {"scene": "x", "text": "hi", "to": 5},
        ):
            with pytest.raises(NpcBridgeError) as info:
                await client.request({"type": "scene.say", "id": "q", **bad})
            assert info.value.code == "bad_request"
        # the server's max_text_chars holds for scene lines as for say
        await client.scene_start("y", ["mage"], "p1")
        with pytest.raises(NpcBridgeError) as info:
            await client.request(
                {"type": "scene.say", "id": "long", "scene": "y", "text": "a" * 4001}
            )
        assert info.value.code == "bad_request"
        assert "scene.say: field 'text': longer than 4000 characters" in info.value.message
    assert bridge.fake.requests == []


# ---------------------------------------------------------------- the policy alone


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


async def test_a_scene_without_npcs_is_quiet(bridge: Bridge) -> None:
    async with await bridge.client() as client:
        await client.request(
            {"type": "scene.start", "scene": "empty", "player": "p1", "npcs": ["mage"]}
        )
        await client.request({"type": "scene.remove", "scene": "empty", "npc": "mage"})
        await client.send({"type": "scene.say", "id": "e", "scene": "empty", "text": "Anyone?"})
        frames = await _exchange(client, "e")
    assert frames == [
        {"type": "scene.done", "id": "e", "scene": "empty", "replies": [], "stopped": "quiet"}
    ]


class _Connection:
    """Only what features.connection.Connection declares: no ``turns``, no other attributes."""

    def __init__(self) -> None:
        self.id = "c1"
        self.npcs = {"innkeeper": Persona.model_validate(INNKEEPER)}
        self.sent: list[dict[str, Any]] = []
        self.state: dict[type, object] = {}
        self.tracked: dict[str | int, asyncio.Task[None]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in {"id", "npcs", "sent", "state", "tracked"}:
            raise AttributeError(f"a feature patched the connection: {name}")
        object.__setattr__(self, name, value)

    def send(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)

    def track(self, request_id: str | int, coro: Any) -> asyncio.Task[None]:
        task = self.tracked[request_id] = asyncio.ensure_future(coro)
        return task

    def check_text(self, kind: str, text: str, request_id: str | int | None) -> None:
        pass

    def plugin_state(self, kind: type[Any]) -> Any:
        return self.state.setdefault(kind, kind())


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
    conn = _Connection()
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
    conn = _Connection()
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
    conn = _Connection()
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
