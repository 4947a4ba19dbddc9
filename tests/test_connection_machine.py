"""The connection state machine without sockets or a clock: each test feeds messages (and the
time) and checks the frames and events that come out against the docs/protocol.md rule it
cites."""

from __future__ import annotations

from typing import Any

import pytest
from connection_helpers import error, feed, machine, opened, say

from npcbridge.protocol import CloseCode
from npcbridge.protocol.connection import (
    HELLO_TIMEOUT_S,
    Phase,
)
from npcbridge.protocol.events import (
    Close,
    Opened,
    StartTurn,
)

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
