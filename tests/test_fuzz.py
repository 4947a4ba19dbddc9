"""Protocol fuzzing with hypothesis: the sans-I/O decoder, then a live server.

The decoder must turn any input into a message or a :class:`ProtocolError`, never another
exception. The live server gets random, mutated, wrongly typed, deeply nested and out-of-order
frames; every frame must get the contract's answer (computed with the decoder as the reference),
the server must never crash, and a witness client streaming replies on another connection the
whole time must see every reply complete.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from npcbridge.protocol import DecodeError, ProtocolError, decode_map, encode, unpack
from npcbridge.protocol.codec import decode_client, validate
from npcbridge.protocol.messages import CLIENT_MESSAGES
from npcbridge.protocol.routing import Router
from npcbridge.testing.bridge import Bridge, start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream

VECTORS = Path(__file__).parent / "vectors"
CLIENT_TYPES = sorted(CLIENT_MESSAGES)
MAX_BAD = 10  # server.max_bad_messages (default)

# ------------------------------------------------------------------------- strategies

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
ids = st.sampled_from([1, 2, 3, "a", "b"]) | ints | st.text(max_size=6) | values
FIELDS = ["id", "npc", "player", "text", "persona", "card", "context", "protocol", "client"]
typed_maps = st.builds(
    lambda mtype, extra: {"type": mtype, **extra},
    st.sampled_from([*CLIENT_TYPES, "x.custom", "nope", ""]) | st.text(max_size=10),
    st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=6),
        values | ids,
        max_size=6,
    ),
)
#: well-formed messages, so that sequences contain valid requests in odd orders
good: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {"type": "ping", "id": 1},
        {"type": "ping"},
        {"type": "hello", "protocol": 1, "client": "again"},
        {"type": "say", "id": 1, "npc": "blacksmith", "player": "p", "text": "hi"},
        {"type": "say", "id": 1, "npc": "blacksmith", "player": "p", "text": "[[words:30]]"},
        {"type": "say", "id": "b", "npc": "ghost", "player": "p", "text": "hi"},
        {"type": "cancel", "id": 1},
        {"type": "cancel", "id": "zz"},
        {"type": "npc.define", "id": 9, "npc": "n", "persona": {"name": "N"}},
        {"type": "npc.define", "id": 9, "npc": "n", "card": {"spec": "x"}},
        {"type": "x.plugin", "id": 4},
    ]
)


def _vectors() -> list[bytes]:
    return [p.read_bytes() for p in sorted(VECTORS.glob("*.msgpack"))] or [
        encode({"type": "ping", "id": 1})
    ]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A golden vector with bytes flipped, inserted, deleted or the tail cut."""
    data = bytearray(draw(st.sampled_from(_vectors())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = bytes([draw(st.integers(0, 255))])
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def deep(depth: int, with_id: bool) -> bytes:
    """A ``say`` whose context nests ``depth`` arrays deep (raw bytes, no recursion)."""
    head: dict[str, Any] = {"type": "say", "npc": "blacksmith", "player": "p", "text": "hi"}
    if with_id:
        head["id"] = 77
    packed = msgpack.packb(head)
    # bump the map's size by one and append "context": [[[...nil...]]]
    body = bytes([packed[0] + 1]) + packed[1:] + msgpack.packb("context")
    return body + b"\x91" * depth + b"\xc0"


huge_headers = st.sampled_from(
    [
        b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GiB
        b"\xc6\xff\xff\xff\xf0abc",  # bin32 claiming 4 GiB
        b"\xdd\xff\xff\xff\xff",  # array32 of 4 G elements
        b"\xdf\xff\xff\xff\xff\xa4type",  # map32 of 4 G pairs
        b"\x81\xa4type\xdb\x7f\xff\xff\xff",
    ]
)

frames = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=20),
    values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
    typed_maps.map(lambda m: msgpack.packb(m, use_bin_type=True)),
    good.map(encode),
    mutated(),
    st.builds(deep, st.integers(1, 3000), st.booleans()),
    huge_headers,
)

# ------------------------------------------------------------------------- the decoder


@settings(max_examples=800, deadline=None)
@given(frames)
def test_decoder_never_raises_anything_but_protocol_errors(frame: bytes | str) -> None:
    if isinstance(frame, str):
        frame = frame.encode()
    try:
        message = decode_client(frame)
    except ProtocolError as exc:
        assert exc.message and len(exc.message) < 400
        assert exc.request_id is None or isinstance(exc.request_id, (str, int))
    else:
        assert message.type in CLIENT_MESSAGES or message.type.startswith("x.")


@settings(max_examples=200, deadline=None)
@given(st.integers(33, 100_000))
def test_deep_nesting_is_refused_quickly(depth: int) -> None:
    with pytest.raises(DecodeError):
        decode_client(deep(depth, True))


def test_nesting_at_the_limit_is_accepted() -> None:
    # the context array is the 2nd level; 31 arrays make 32 levels in all
    assert decode_map(deep(30, True))["type"] == "say"


# ------------------------------------------------------------------------- a live server


def expected(frame: bytes | str) -> tuple[str, Any] | None:
    """The contract's answer to a frame, from the sans-I/O reference: ``(code, id)`` of the
    ``error`` it must get, or None for a well-formed message (any orderly answer)."""
    if isinstance(frame, str):
        return ("bad_request", None)
    try:
        raw = decode_map(frame)
    except DecodeError as exc:
        return ("bad_request", exc.request_id)
    try:
        message = validate(raw, CLIENT_MESSAGES)
    except ProtocolError as exc:
        return (str(exc.code), exc.request_id)
    if message.type.startswith("x."):
        return ("unknown_type", raw.get("id"))
    return None


class LiveServer:
    """A bridge on its own event loop thread, plus a witness client that keeps streaming."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stop = False
        self.completed = 0
        self.failures: list[str] = []
        self.bridge: Bridge = self._run(self._start(tmp))
        self.witness = asyncio.run_coroutine_threadsafe(self._witness(), self.loop)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self, tmp: Path) -> Bridge:
        fake = FakeUpstream(tokens_per_s=400)
        await fake.start()
        # the fuzzer sends fast: the message rate limit is tested in test_hardening.py
        return await start_bridge(fake, tmp, server__max_messages_per_s=1e6)

    async def _witness(self) -> None:
        client = await self.bridge.client()
        for n in itertools.count():
            if self.stop:
                break
            try:
                reply = await client.say("blacksmith", "witness", "[[words:20]]", id=f"w{n}")
                text = await asyncio.wait_for(reply.text(), 10)
                if len(text.split()) != 20:
                    self.failures.append(f"w{n}: {text!r}")
                self.completed += 1
            except Exception as exc:
                self.failures.append(f"w{n}: {exc!r}")
                return
        await client.close()

    def close(self) -> None:
        self.stop = True
        self.witness.result(30)
        self._run(self.bridge.close())
        self._run(self.bridge.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("fuzz"))
    try:
        yield server
    finally:
        server.close()
        assert not server.failures, server.failures
        assert server.completed > 0


def _recv(ws: ClientConnection, timeout: float) -> Any:
    data = ws.recv(timeout)
    assert isinstance(data, bytes), data
    return unpack(data)


def _hello(ws: ClientConnection) -> ClientConnection:
    ws.send(encode({"type": "hello", "protocol": 1, "client": "fuzz"}))
    assert _recv(ws, 10)["type"] == "welcome"
    return ws


STREAM_TYPES = {"reply.start", "reply.delta", "reply.end", "emote", "action"}


def _next_answer(ws: ClientConnection, started: Router) -> dict[str, Any]:
    """The next frame that belongs to no request sent earlier: requests run concurrently, so
    a well-formed request's answer (an ``ok`` after a store write, a reply's late failure) may
    come after the ``pong`` that followed it; the clients' routing rule tells which frames are
    still that request's."""
    while True:
        frame = _recv(ws, 10)
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), frame
        if started.feed(frame).request is not None or frame["type"] in STREAM_TYPES:
            continue
        return frame


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(frames, min_size=1, max_size=16))
def test_live_server_answers_every_frame(live: LiveServer, sequence: list[bytes | str]) -> None:
    started = Router()
    bad_in_a_row = 0
    with connect(live.bridge.url, max_size=None, open_timeout=10) as ws:
        _hello(ws)
        for n, frame in enumerate(sequence):
            if not isinstance(frame, str) and len(frame) > 65536:
                continue
            want = expected(frame)
            ws.send(frame)
            if want is None:
                raw = decode_map(frame)  # type: ignore[arg-type]
                # as a client does: a cancel is not a request of its own (nothing answers it)
                if "id" in raw and raw["type"] != "cancel" and raw["id"] not in started.pending():
                    started.open(raw["id"], raw["type"])
                # a well-formed request: whatever it answers, the connection stays in order
                ws.send(encode({"type": "ping", "id": f"sync{n}"}))
                try:
                    while True:
                        answer = _recv(ws, 15)
                        assert isinstance(answer, dict) and isinstance(answer.get("type"), str)
                        started.feed(answer)
                        if answer == {"type": "pong", "id": f"sync{n}"}:
                            break
                except ConnectionClosed:
                    # well-formed but refused in this state (a second hello, a cancel of an
                    # unknown id, a duplicate id) is bad_request too: the 11th in a row closes
                    assert bad_in_a_row >= MAX_BAD, frame
                    assert ws.protocol.close_code == 1008
                    return
                bad_in_a_row = 0
                continue
            code, request_id = want
            answer = _next_answer(ws, started)
            assert answer["type"] == "error", (frame, answer)
            assert answer["code"] == code, (frame, answer)
            assert answer.get("id") == request_id, (frame, answer)
            assert isinstance(answer["message"], str) and isinstance(answer["retryable"], bool)
            bad_in_a_row = bad_in_a_row + 1 if code == "bad_request" else 0
            if bad_in_a_row > MAX_BAD:
                with pytest.raises(ConnectionClosed):
                    while True:
                        _next_answer(ws, started)
                assert ws.protocol.close_code == 1008
                return
    assert not live.failures, live.failures


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames)
def test_live_server_first_frame(live: LiveServer, frame: bytes | str) -> None:
    """Before ``hello``: a valid hello is welcomed; anything else gets an error and a close."""
    with connect(live.bridge.url, max_size=None, open_timeout=10) as ws:
        ws.send(frame)
        answer = _recv(ws, 10)
        if answer["type"] == "welcome":
            assert decode_client(frame if isinstance(frame, bytes) else b"").type == "hello"
            return
        assert answer["type"] == "error"
        assert answer["code"] in ("bad_request", "unsupported_protocol", "unauthorized")
        with pytest.raises(ConnectionClosed):
            ws.recv(10)
        assert ws.protocol.close_code in (1008, 4001, 4002)
