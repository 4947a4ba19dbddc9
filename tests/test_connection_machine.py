"""The connection state machine without sockets or a clock: each test feeds messages (and the
time) and checks the frames and events that come out against the docs/protocol.md rule it
cites."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from npcbridge.builtin.persona import persona_from_card
from npcbridge.gateway.ratelimit import Bucket
from npcbridge.pipeline.actions import check_schema
from npcbridge.protocol import CloseCode, DecodeError, ErrorCode, Persona, ProtocolError, pack
from npcbridge.protocol.connection import (
    HELLO_TIMEOUT_S,
    ConnectionMachine,
    ConnectionSettings,
    Phase,
    ServerParts,
)
from npcbridge.protocol.events import (
    CancelRequest,
    Close,
    Opened,
    RunExtension,
    RunHandler,
    StartTurn,
)

SMITH = Persona.model_validate({"name": "Brom"})
HANDLERS = {"quest.generate": True, "memory.add": False}


def _persona(npc: str, defined: Mapping[str, Persona]) -> Persona:
    persona = defined.get(npc) or {"blacksmith": SMITH}.get(npc)
    if persona is None:
        raise ProtocolError(ErrorCode.UNKNOWN_NPC, "field 'npc': unknown npc; define it first")
    return persona


def machine(now: float = 0.0, **settings: Any) -> ConnectionMachine:
    """A machine with the default server settings (overridden by ``settings``)."""
    values: dict[str, Any] = {
        "token": None,
        "max_in_flight": 8,
        "max_bad_messages": 10,
        "max_messages_per_s": 1000.0,
        "max_text_chars": 4000,
        "max_message_bytes": 65536,
    }
    values.update(settings)
    parts = ServerParts(
        persona=_persona,
        card_persona=persona_from_card,
        action_problem=check_schema,
        handler=HANDLERS.get,
        bucket=lambda rate, at: Bucket.per_second(rate, clock=lambda: at),
        server_name="npcbridge/test",
        models=("m-small", "m-large"),
        features=("stream", "cancel"),
    )
    return ConnectionMachine("c0ffee42", ConnectionSettings(**values), parts, now)


def feed(m: ConnectionMachine, message: dict[str, Any] | bytes | str, now: float = 0.0) -> list:
    """Feed one message; return the frames and events it produced, in that order."""
    data = pack(message) if isinstance(message, dict) else message
    m.receive_data(data, now)
    return [*m.frames_to_send(), *m.events_received()]


def opened(now: float = 0.0, **settings: Any) -> ConnectionMachine:
    m = machine(now, **settings)
    feed(m, {"type": "hello", "protocol": 1, "client": "test"}, now)
    return m


def say(request_id: Any = "t-1", npc: str = "blacksmith", **fields: Any) -> dict[str, Any]:
    return {"type": "say", "id": request_id, "npc": npc, "player": "p1", "text": "hi", **fields}


def error(out: list) -> dict[str, Any]:
    (frame,) = [o for o in out if isinstance(o, dict)]
    assert frame["type"] == "error"
    return frame


# ---------------------------------------------------------------- Handshake


def test_hello_is_answered_with_welcome() -> None:
    """protocol.md#handshake: "`hello` must be the first message; the server answers
    `welcome`" (with the limits of #welcome)."""
    m = machine()
    out = feed(m, {"type": "hello", "protocol": 1, "client": "godot"})
    welcome, event = out
    assert welcome == {
        "type": "welcome",
        "protocol": 1,
        "session": "c0ffee42",
        "server": "npcbridge/test",
        "models": ["m-small", "m-large"],
        "features": ["stream", "cancel"],
        "limits": {"max_message_bytes": 65536, "max_in_flight": 8},
    }
    assert event == Opened("godot")
    assert m.phase is Phase.OPEN and m.client == "godot"


@pytest.mark.parametrize(("first", "refused"), [(say(), "say"), ("text", None), (b"\xc1", None)])
def test_anything_but_hello_first_closes_1008(first: Any, refused: str | None) -> None:
    """protocol.md#handshake: "Anything else first: `error` `bad_request`, then close 1008"
    and "Each of these errors carries `refused`" (the type of the message sent instead)."""
    m = machine()
    out = feed(m, first)
    frame, close = out
    assert frame["code"] == "bad_request" and frame.get("refused") == refused
    assert isinstance(close, Close) and close.code == CloseCode.POLICY_VIOLATION
    assert m.phase is Phase.CLOSED


def test_no_hello_in_time_closes_1008() -> None:
    """protocol.md#connection-level close codes: "1008 (policy: no hello, ...)"."""
    m = machine(now=100.0)
    m.check_deadline(100.0 + HELLO_TIMEOUT_S - 0.01)
    assert m.frames_to_send() == [] and m.events_received() == []
    m.check_deadline(100.0 + HELLO_TIMEOUT_S)
    (frame,) = m.frames_to_send()
    assert frame["code"] == "bad_request" and frame["message"] == "no hello in time"
    assert m.events_received() == [Close(CloseCode.POLICY_VIOLATION, "no hello in time")]


def test_no_deadline_once_open() -> None:
    """protocol.md#handshake: the hello deadline only applies before `hello`."""
    m = opened()
    m.check_deadline(HELLO_TIMEOUT_S * 10)
    assert m.frames_to_send() == [] and m.events_received() == [] and m.phase is Phase.OPEN


@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_missing_or_wrong_token_closes_4001(token: str | None) -> None:
    """protocol.md#handshake: "Wrong or missing token when the server requires one: `error`
    `unauthorized`, then close 4001"; it carries `refused: "hello"`."""
    m = machine(token="s3cret")
    hello = {"type": "hello", "protocol": 1, **({"token": token} if token else {})}
    frame, close = feed(m, hello)
    assert frame["code"] == "unauthorized" and frame["refused"] == "hello"
    assert "s3cret" not in frame["message"]
    assert close == Close(CloseCode.UNAUTHORIZED, "missing or wrong token")


def test_the_right_token_opens_and_a_token_without_one_configured_is_ignored() -> None:
    """protocol.md#handshake: "on loopback it is optional and a token sent to a server without
    one is ignored"."""
    m = machine(token="s3cret")
    assert feed(m, {"type": "hello", "protocol": 1, "token": "s3cret"})[0]["type"] == "welcome"
    m = machine()
    assert feed(m, {"type": "hello", "protocol": 1, "token": "x"})[0]["type"] == "welcome"


def test_an_unsupported_version_closes_4002_listing_the_supported_ones() -> None:
    """protocol.md#handshake: "Unsupported protocol version: `error` `unsupported_protocol`
    whose `supported` field lists the versions the server speaks ... then close 4002"."""
    frame, close = feed(machine(), {"type": "hello", "protocol": 2})
    assert frame["code"] == "unsupported_protocol" and frame["supported"] == [1]
    assert frame["refused"] == "hello" and "2" not in frame["message"]
    assert isinstance(close, Close) and close.code == CloseCode.UNSUPPORTED_PROTOCOL


def test_a_second_hello_is_a_bad_request() -> None:
    """protocol.md#limits-and-bad-input: "a second `hello`" answers `bad_request` (and counts)."""
    m = opened()
    frame = error(feed(m, {"type": "hello", "protocol": 1}))
    assert frame["code"] == "bad_request" and frame["refused"] == "hello"
    assert m.bad_in_a_row == 1 and m.phase is Phase.OPEN


# ---------------------------------------------------------------- Limits and bad input


def test_more_than_max_bad_messages_in_a_row_closes_1008() -> None:
    """protocol.md#limits-and-bad-input: "more than 10 `bad_request` answers in a row
    (`server.max_bad_messages`) ... close 1008"; each answer keeps the connection open before."""
    m = opened()
    for _ in range(10):
        out = feed(m, b"\xc1")
        assert error(out)["code"] == "bad_request" and len(out) == 1
    out = feed(m, "a text frame")
    assert out[-1] == Close(CloseCode.POLICY_VIOLATION, "too many bad messages")
    assert feed(m, {"type": "ping", "id": 1}) == []  # closed: input is ignored


@pytest.mark.parametrize(
    "reset",
    [{"type": "ping"}, {"type": "weird.type"}, say(npc="nobody")],
    ids=["answer", "unknown_type", "unknown_npc"],
)
def test_any_other_answer_resets_the_bad_message_count(reset: dict[str, Any]) -> None:
    """protocol.md#limits-and-bad-input: "any other answer, an error with another code
    included, resets the count"."""
    m = opened()
    for _ in range(10):
        feed(m, b"\xc1")
    feed(m, reset)
    assert m.bad_in_a_row == 0
    for _ in range(10):
        assert not any(isinstance(o, Close) for o in feed(m, b"\xc1"))


def test_an_id_over_128_bytes_is_refused_without_repeating_it() -> None:
    """protocol.md#limits-and-bad-input: "an `id` that is a string over 128 UTF-8 bytes ...
    `error` `bad_request` naming `id`, **without** an `id`"."""
    frame = error(feed(opened(), say("é" * 65)))
    assert frame["code"] == "bad_request" and "id" not in frame and "'id'" in frame["message"]


def test_say_text_is_limited_in_code_points() -> None:
    """protocol.md#limits-and-bad-input: "`say.text` longer than `server.max_text_chars`
    (4000), counted in Unicode code points ... `bad_request` naming the field"."""
    m = opened(max_text_chars=4)
    assert isinstance(feed(m, say("a", text="🗡🗡🗡🗡"))[0], StartTurn)
    frame = error(feed(m, say("b", text="12345")))
    assert frame["code"] == "bad_request" and "'text'" in frame["message"]
    assert frame["id"] == "b" and frame["refused"] == "say" and "b" not in m.in_flight


def test_a_type_nobody_handles_is_unknown_type() -> None:
    """protocol.md#limits-and-bad-input: "a `type` nobody handles: `error` `unknown_type`" (a
    known message whose feature is off included)."""
    m = opened()
    for message in (
        {"type": "nope", "id": 3},
        {"type": "barks.generate", "id": 3, "npcs": [{"npc": "a"}]},
    ):
        frame = error(feed(m, message))
        assert frame["code"] == "unknown_type" and frame["id"] == 3


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
