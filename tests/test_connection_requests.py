"""The connection state machine's requests, without sockets or a clock: talking (turns, ids in
flight, the in-flight cap, cancel), NPC definitions, the message rate, ping, and handlers; each
test checks the frames and events against the docs/protocol.md rule it cites."""

from __future__ import annotations

from typing import Any

import pytest
from connection_helpers import SMITH, error, feed, opened, say

from npcbridge.protocol import CloseCode, DecodeError, ErrorCode, ProtocolError
from npcbridge.protocol.events import (
    CancelRequest,
    Close,
    RunExtension,
    RunHandler,
    StartTurn,
)

# ---------------------------------------------------------------- Talking


def test_say_starts_a_turn_with_the_npcs_persona() -> None:
    """protocol.md#talking: "`say` starts a turn"; the id is in flight until it ends."""
    m = opened()
    (event,) = feed(m, say("t-7"))
    assert isinstance(event, StartTurn)
    assert event.request_id == "t-7" and event.persona == SMITH and event.say.text == "hi"
    assert "t-7" in m.in_flight


def test_a_say_with_an_id_in_flight_is_refused_and_the_id_is_free_after_it_ends() -> None:
    """protocol.md#limits-and-bad-input: "`say` with an `id` already in flight: `error`
    `bad_request`" (protocol.md#error-refused shows the frame)."""
    m = opened()
    feed(m, say("t-7"))
    frame = error(feed(m, say("t-7")))
    assert frame == {
        "code": "bad_request",
        "id": "t-7",
        "message": "field 'id': a request with this id is already in flight",
        "refused": "say",
        "retryable": False,
        "type": "error",
    }
    m.request_done("t-7")
    assert isinstance(feed(m, say("t-7"))[0], StartTurn)


def test_max_in_flight_requests_answer_too_many_in_flight() -> None:
    """protocol.md#limits-and-bad-input: "`say` (or another request) while `max_in_flight`
    requests are running: `error` `too_many_in_flight` (retryable)"."""
    m = opened(max_in_flight=2)
    feed(m, say(1))
    feed(m, {"type": "quest.generate", "id": 2, "theme": "t"})  # a cancellable handler counts
    for message in (say(3), {"type": "quest.generate", "id": 4, "theme": "t"}):
        frame = error(feed(m, message))
        assert frame["code"] == "too_many_in_flight" and frame["retryable"] is True
        assert frame["refused"] == message["type"]
    with pytest.raises(ProtocolError) as info:
        m.admit("feature-request")  # what a handler's own tracked request meets
    assert info.value.code == ErrorCode.TOO_MANY_IN_FLIGHT
    m.request_done(1)
    assert isinstance(feed(m, say(3))[0], StartTurn)


def test_a_say_to_an_unknown_npc_is_refused_and_not_in_flight() -> None:
    """protocol.md#limits-and-bad-input: "`say` ... naming an NPC this connection does not
    know: `error` `unknown_npc`"."""
    m = opened()
    frame = error(feed(m, say("t-1", npc="ghost")))
    assert frame["code"] == "unknown_npc" and frame["id"] == "t-1" and frame["refused"] == "say"
    assert "ghost" not in frame["message"] and not m.in_flight


def test_cancel_rules() -> None:
    """protocol.md#limits-and-bad-input: "`cancel` of an id that was never used ... `error`
    `bad_request`; **Decision:** a cancel of a reply that just finished is ignored"."""
    m = opened()
    feed(m, say("t-1"))
    assert feed(m, {"type": "cancel", "id": "t-1"}) == [CancelRequest("t-1")]
    assert "t-1" in m.in_flight  # in flight until the turn says it ended
    m.request_done("t-1")
    assert feed(m, {"type": "cancel", "id": "t-1"}) == []
    frame = error(feed(m, {"type": "cancel", "id": "never"}))
    assert frame["code"] == "bad_request" and frame["refused"] == "cancel"
    frame = error(feed(m, {"type": "cancel", "id": "t-1/0"}))  # a scene reply's id
    assert frame["code"] == "bad_request"


def test_barge_in_cancel_says_so() -> None:
    """protocol.md#voice: "`cancel` with `barge_in: true` ... ends the reply `finish:
    "cancelled"` with `text` = the text of the units whose audio was sent"."""
    m = opened()
    feed(m, say("t-1"))
    assert feed(m, {"type": "cancel", "id": "t-1", "barge_in": True}) == [
        CancelRequest("t-1", barge_in=True)
    ]
    frame = error(feed(m, {"type": "cancel", "id": "t-1", "barge_in": "yes"}))
    assert frame["code"] == "bad_request" and "barge_in" in frame["message"]


# ---------------------------------------------------------------- NPCs


def test_npc_define_is_per_connection() -> None:
    """protocol.md#npcs: "`npc.define` defines or replaces an NPC **for this connection**"
    and is answered with `ok` (protocol.md#ok)."""
    m, other = opened(), opened()
    define = {"type": "npc.define", "id": 1, "npc": "guard", "persona": {"name": "Hild"}}
    assert feed(m, define) == [{"type": "ok", "id": 1}]
    (event,) = feed(m, say("t-1", npc="guard"))
    assert isinstance(event, StartTurn) and event.persona.name == "Hild"
    assert error(feed(other, say("t-1", npc="guard")))["code"] == "unknown_npc"


def test_npc_define_takes_a_card() -> None:
    """protocol.md#npcs: "Instead of `persona` a Character Card V2 map may be sent as `card`"."""
    m = opened()
    card = {"spec": "chara_card_v2", "data": {"name": "Mira", "description": "A bard."}}
    assert feed(m, {"type": "npc.define", "npc": "bard", "card": card}) == [{"type": "ok"}]
    assert m.npcs["bard"].name == "Mira"


@pytest.mark.parametrize(
    "define",
    [
        {"type": "npc.define", "id": 5, "npc": "x"},
        {
            "type": "npc.define",
            "id": 5,
            "npc": "x",
            "persona": {
                "name": "X",
                "actions": [{"name": "a", "description": "d", "parameters": {"type": 3}}],
            },
        },
    ],
    ids=["neither", "invalid-schema"],
)
def test_an_invalid_npc_define_is_a_bad_request(define: dict[str, Any]) -> None:
    """protocol.md#npcs: "an invalid schema is a `bad_request`" (as is a definition with neither
    `persona` nor `card`); it counts toward max_bad_messages."""
    m = opened()
    frame = error(feed(m, define))
    assert frame["code"] == "bad_request" and frame["id"] == 5 and frame["refused"] == "npc.define"
    assert "x" not in m.npcs and m.bad_in_a_row == 1


# ---------------------------------------------------------------- rate, liveness, handlers


def test_messages_per_player_are_rate_limited_with_the_time_given() -> None:
    """protocol.md#errors (refusals): "the message rate" refuses with `rate_limited` and
    `retry_after_ms`; one bucket per `player`, one for messages that name none."""
    m = opened(now=50.0, max_messages_per_s=2)
    feed(m, say(1), now=50.0)
    feed(m, say(2), now=50.0)
    frame = error(feed(m, say(3), now=50.0))
    assert frame["code"] == "rate_limited" and frame["retry_after_ms"] == 500
    assert frame["refused"] == "say" and frame["retryable"] is True
    assert "for this player" in frame["message"]
    assert isinstance(feed(m, say(4, player="p2"), now=50.0)[0], StartTurn)
    assert feed(m, {"type": "ping"}, now=50.0) == [{"type": "pong"}]
    assert isinstance(feed(m, say(5), now=50.5)[0], StartTurn)  # refilled half a second later


def test_ping_answers_pong_with_its_id() -> None:
    """protocol.md#liveness: `ping` is answered by `pong` repeating its `id`."""
    m = opened()
    assert feed(m, {"type": "ping", "id": 9}) == [{"type": "pong", "id": 9}]


def test_handlers_run_as_events_and_cancellable_ones_are_in_flight() -> None:
    """protocol.md#game-features and #extensions: a message a plugin handles runs its handler;
    an `x.*` nobody registered goes to the extension hook; a cancellable one is in flight."""
    m = opened()
    (tracked,) = feed(m, {"type": "quest.generate", "id": 1, "theme": "t"})
    assert isinstance(tracked, RunHandler) and tracked.tracked and tracked.type == "quest.generate"
    assert 1 in m.in_flight
    assert feed(m, {"type": "cancel", "id": 1}) == [CancelRequest(1)]
    add = {"type": "memory.add", "id": 2, "npc": "blacksmith", "text": "fact"}
    (untracked,) = feed(m, add)
    assert isinstance(untracked, RunHandler) and not untracked.tracked and 2 not in m.in_flight
    assert feed(m, {"type": "x.dice", "id": 3}) == [RunExtension({"type": "x.dice", "id": 3})]


def test_a_handlers_refusal_is_answered_like_one_at_the_door() -> None:
    """protocol.md#errors (refusals): a handler's refusal carries `refused` and the id; a
    `bad_request` counts toward max_bad_messages like any other."""
    m = opened(max_bad_messages=0)
    raw = {"type": "memory.add", "id": 2, "npc": "blacksmith", "text": "fact"}
    m.handler_refused(DecodeError("memory.add: field 'text': too long"), raw)
    (frame,) = m.frames_to_send()
    assert frame["id"] == 2 and frame["refused"] == "memory.add"
    assert m.events_received() == [Close(CloseCode.POLICY_VIOLATION, "too many bad messages")]
    m.handler_refused(ProtocolError(ErrorCode.UNKNOWN_NPC, "unknown npc"), raw)
    assert m.frames_to_send() == []  # closed
