"""``POST .../messages?wait=`` over real HTTP: the answer holds every frame of the request by the
clients' routing rule, including the replies a ``scene.say`` or a ``world.event`` opens under
their own ids (``parent``: the request), in the session's order, up to the frame ending it."""

from __future__ import annotations

from typing import Any

import pytest
from scene_helpers import INNKEEPER

from npcbridge.testing.bridge import Bridge
from npcbridge.testing.fake_upstream import Reply
from tests.http_helpers import Transport


@pytest.fixture
def http(bridge: Bridge) -> Transport:
    return Transport(bridge.server.port)


async def _waited_and_polled(
    http: Transport, key: str, message: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The waited answer's messages, and the session's messages from before it (a poll)."""
    cursor = (await http.poll(key)).json()["cursor"]
    answer = await http.post(key, message, "?wait=20")
    assert answer.status == 200, answer.body
    polled = (await http.poll(key, f"?cursor={cursor}")).json()["messages"]
    return answer.json()["messages"], polled


async def test_a_waited_world_event_answers_its_reactions_then_its_ok(
    bridge: Bridge, http: Transport
) -> None:
    bridge.fake.script(Reply(text="Thief! Stop right there."), Reply(text="My poor apples."))
    key = await http.open()
    event = {"type": "world.event", "id": "e", "npcs": ["blacksmith", "mage"], "react": True,
             "text": "A thief grabs an apple and runs"}  # fmt: skip
    waited, polled = await _waited_and_polled(http, key, event)
    assert waited == polled  # every frame of the session since, nothing else, in order
    assert waited[-1]["type"] == "ok" and waited[-1]["id"] == "e"
    starts = [m for m in waited if m["type"] == "reply.start"]
    assert [(m["id"], m["parent"]) for m in starts] == [("e/0", "e"), ("e/1", "e")]
    ends = {m["id"]: m["text"] for m in waited if m["type"] == "reply.end"}
    assert sorted(ends.values()) == ["My poor apples.", "Thief! Stop right there."]
    for reply_id, text in ends.items():
        deltas = [m for m in waited if m["type"] == "reply.delta" and m["id"] == reply_id]
        assert "".join(d["text"] for d in deltas) == text
    assert {r["id"] for r in waited[-1]["reactions"]} == {"e/0", "e/1"}


async def test_a_waited_scene_say_answers_every_reply_then_scene_done(
    bridge: Bridge, http: Transport
) -> None:
    bridge.fake.script(
        Reply(text="Haunted? Brom, tell the child what you heard."),
        Reply(text="Aye. Aelindra saw the lights herself."),
    )
    key = await http.open()
    define = {"type": "npc.define", "id": "d", "npc": "innkeeper", "persona": INNKEEPER}
    assert (await http.post(key, define)).json()["messages"][0]["type"] == "ok"
    start = {"type": "scene.start", "id": "st", "scene": "tavern", "player": "p1",
             "npcs": ["blacksmith", "mage", "innkeeper"], "max_replies": 2}  # fmt: skip
    assert (await http.post(key, start, "?wait=5")).json()["messages"][0]["type"] == "ok"
    said = {"type": "scene.say", "id": 7, "scene": "tavern", "text": "Aelindra, is it haunted?"}
    waited, polled = await _waited_and_polled(http, key, said)
    assert waited == polled
    kinds = [m["type"] for m in waited]
    assert kinds[0] == "reply.start" and kinds[-1] == "scene.done" and waited[-1]["id"] == 7
    assert [(m["id"], m["npc"], m["parent"]) for m in waited if m["type"] == "reply.start"] == [
        ("7/1", "mage", 7),
        ("7/2", "blacksmith", 7),
    ]
    # each reply whole before the next starts, as the scene runs them
    second = [i for i, kind in enumerate(kinds) if kind == "reply.start"][1]
    assert kinds[second - 1] == "reply.end" and waited[second - 1]["id"] == "7/1"
    merged = (await http.post(key, {**said, "id": 8}, "?wait=20&merge=1")).json()["messages"]
    assert [m["type"] for m in merged][-1] == "scene.done" and merged[-1]["id"] == 8


async def test_a_waited_answer_holds_no_other_request_s_frames(
    bridge: Bridge, http: Transport
) -> None:
    key = await http.open()
    other = {"type": "say", "id": "a", "npc": "blacksmith", "player": "p", "text": "[[words:40]]"}
    await http.post(key, other)  # not waited: its reply streams on meanwhile
    mine = {"type": "say", "id": "b", "npc": "mage", "player": "p", "text": "[[words:5]]"}
    waited = (await http.post(key, mine, "?wait=20")).json()["messages"]
    assert {m["id"] for m in waited} == {"b"} and waited[-1]["type"] == "reply.end"


async def test_a_waited_speech_end_answers_the_transcript_and_the_reply(
    bridge: Bridge, http: Transport
) -> None:
    """``speech.end`` carries the id of its ``speech.start`` and waits for that request."""
    import base64

    from tests.voice_helpers import SMITH as VOICED
    from tests.voice_helpers import speech_wav

    bridge.fake.audio.script_transcripts("Fix my sword? [[reply:Aye, lad.]]")
    key = await http.open()
    define = {"type": "npc.define", "id": "d", "npc": "smith", "persona": VOICED}
    assert (await http.post(key, define)).status == 200
    start = {"type": "speech.start", "id": "v", "npc": "smith", "player": "p1",
             "format": "pcm16", "sample_rate": 16000}  # fmt: skip
    assert (await http.post(key, start)).status == 200
    pcm = speech_wav(0.5)[44:]
    chunk = {"type": "speech.chunk", "id": "v", "seq": 0, "audio": base64.b64encode(pcm).decode()}
    assert (await http.post(key, chunk)).status == 200
    waited = (await http.post(key, {"type": "speech.end", "id": "v"}, "?wait=20")).json()
    kinds = [m["type"] for m in waited["messages"]]
    assert kinds[0] == "transcript" and kinds[-1] == "reply.end", kinds
    assert waited["messages"][-1]["text"] == "Aye, lad."
