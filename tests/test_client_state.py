"""The Python client's view of NPC state (npcbridge.client.state) fed the shared state vectors:
what it knows per NPC and player, and the listeners it calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from npcbridge.client import StateView
from npcbridge.protocol import unpack

VECTORS = Path(__file__).parent / "vectors"


def vector(name: str) -> dict[str, Any]:
    """A vector's message, decoded from its msgpack bytes (and equal to its JSON twin)."""
    message = unpack((VECTORS / f"{name}.msgpack").read_bytes())
    assert message == json.loads((VECTORS / f"{name}.json").read_text())
    return dict(message)


def test_a_crossing_frame_is_known_and_reaches_the_listeners() -> None:
    view = StateView()
    calls: list[tuple[str, str | None, dict[str, Any], dict[str, Any]]] = []
    view.on_state(lambda npc, player, state, frame: calls.append((npc, player, state, frame)))
    view.seen(vector("state-crossed"))
    known = view.known[("guard", "p1")]
    assert known == {
        "mood": "angry",
        "intensity": 0.6,
        "relationship": {"trust": -55.5, "affection": -10.25, "familiarity": 12.5},
    }
    ((npc, player, state, frame),) = calls
    assert (npc, player, state) == ("guard", "p1", known)
    assert [c["name"] for c in frame["crossed"]] == ["hostile", "mood"]


def test_reply_end_state_belongs_to_the_says_player_or_only_the_mood_without_one() -> None:
    view = StateView()
    view.seen(vector("reply.end-state"), "p1")
    assert view.known[("guard", "p1")]["relationship"]["familiarity"] == 13.5
    view.seen(vector("reply.end-state"))  # a scene reply or a reaction: no player known
    assert view.known[("guard", None)] == {"mood": "happy", "intensity": 0.2}


def test_frames_without_state_and_failing_listeners_change_nothing() -> None:
    view = StateView()
    view.on_state(lambda *args: 1 / 0)
    view.seen(vector("reply.end"))  # a reply of an NPC without state
    view.seen(vector("ok"))
    assert view.known == {}
    view.seen(vector("state"))  # the failing listener is logged, the state still known
    assert view.known[("guard", "p1")]["mood"] == "angry"
