"""The rules of one client connection as a state machine, without I/O (docs/protocol.md).

A transport feeds it each whole message (a WebSocket message, an HTTP body) with
:meth:`ConnectionMachine.receive_data` (and the time: the machine reads no clock), then takes
:meth:`~ConnectionMachine.frames_to_send` (server messages as dicts, in order) and
:meth:`~ConnectionMachine.events_received` (what to run: :mod:`npcbridge.protocol.events`),
and reports back when a request it started ends
(:meth:`~ConnectionMachine.request_done`) or when a handler refused its message
(:meth:`~ConnectionMachine.handler_refused`). Frames of a run request (a reply) do not pass
through the machine.

Phases: ``HELLO`` (only ``hello`` is accepted; :attr:`~ConnectionMachine.hello_deadline`) ->
``OPEN`` -> ``CLOSED`` (after a :class:`~npcbridge.protocol.events.Close`; input is ignored).

Rules (docs/protocol.md "Handshake", "Limits and bad input"): ``hello`` first, token, version;
``bad_request`` for undecodable input, more than ``max_bad_messages`` in a row close 1008; a
message rate per ``player``; ids in flight, ``max_in_flight``; the ``cancel`` rules; NPCs defined
per connection. Every error answering a message refuses it and carries ``refused``.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from .codec import decode_map, refused_type, request_id_of, validate
from .errors import CloseCode, DecodeError, ErrorCode, ProtocolError
from .events import (
    CancelRequest,
    Close,
    Event,
    Opened,
    RunExtension,
    RunHandler,
    StartTurn,
)
from .frames import error_frame, ok_frame
from .messages import (
    CLIENT_MESSAGES,
    PROTOCOL_VERSION,
    ActionSpec,
    Cancel,
    Hello,
    Message,
    NpcDefine,
    Persona,
    Ping,
    Say,
)
from .version import check_version

#: bytes of one message -> its map with a string ``type``, or :class:`DecodeError`
Decoder = Callable[[bytes], dict[str, Any]]

#: seconds a new connection has to send ``hello``
HELLO_TIMEOUT_S = 10.0
#: ids of ended ``say`` requests remembered, so a cancel crossing ``reply.end`` is ignored
RECENT_IDS = 256
#: players one connection may keep rate-limit state for (oldest forgotten first)
MAX_RATE_BUCKETS = 1024


class Phase(Enum):
    """Where a connection is in its life."""

    HELLO = "hello"
    OPEN = "open"
    CLOSED = "closed"


class TokenBucket(Protocol):
    """A message-rate bucket (:class:`npcbridge.gateway.ratelimit.Bucket` in the server)."""

    def try_take(self, amount: float = 1.0, now: float | None = None) -> float:
        """Take ``amount`` and return 0.0, or take nothing and return the seconds to wait."""


@dataclass(frozen=True)
class ConnectionSettings:
    """The server settings the connection rules read (``[server]`` in the config)."""

    #: the token ``hello`` must carry, None when the server needs none
    token: str | None
    max_in_flight: int
    max_bad_messages: int
    max_messages_per_s: float
    max_text_chars: int
    #: only announced in ``welcome.limits`` (the WebSocket layer enforces it)
    max_message_bytes: int


@dataclass(frozen=True)
class ServerParts:
    """What the rules look up outside the connection; all of it answers at once (no I/O)."""

    #: ``(npc, npcs defined on this connection) -> persona``; raises ``unknown_npc``
    persona: Callable[[str, Mapping[str, Persona]], Persona]
    #: a Character Card -> persona; raises ValueError naming what is wrong
    card_persona: Callable[[dict[str, Any]], Persona]
    #: why an action's parameter schema is unusable, or None
    action_problem: Callable[[ActionSpec], str | None]
    #: for a message type: None when no handler is registered, else whether it is cancellable
    handler: Callable[[str], bool | None]
    #: ``(rate per second, now) -> bucket`` holding one second's worth
    bucket: Callable[[float, float], TokenBucket]
    #: ``welcome.server``
    server_name: str
    #: ``welcome.models``
    models: tuple[str, ...]
    #: ``welcome.features``
    features: tuple[str, ...]


class ConnectionMachine:
    """The protocol state of one connection (module docstring)."""

    def __init__(
        self, session_id: str, settings: ConnectionSettings, parts: ServerParts, now: float
    ) -> None:
        self.session_id = session_id
        self.settings = settings
        self.parts = parts
        self.phase = Phase.HELLO
        #: when the connection is refused for sending no ``hello`` (see :meth:`check_deadline`)
        self.hello_deadline = now + HELLO_TIMEOUT_S
        #: the ``client`` of the ``hello``
        self.client = ""
        #: NPCs defined on this connection with ``npc.define`` (read only outside)
        self.npcs: dict[str, Persona] = {}
        #: ids of the requests in flight -> their message type
        self.in_flight: dict[str | int, str] = {}
        self.recent: OrderedDict[str | int, None] = OrderedDict()
        self.bad_in_a_row = 0
        self.buckets: OrderedDict[str | None, TokenBucket] = OrderedDict()
        self._frames: list[dict[str, Any]] = []
        self._events: list[Event] = []

    # ---------------------------------------------------------------- outputs

    def frames_to_send(self) -> list[dict[str, Any]]:
        """The frames to send, in order, since the last call."""
        frames, self._frames = self._frames, []
        return frames

    def events_received(self) -> list[Event]:
        """The events to act on, in order, since the last call (after sending the frames)."""
        events, self._events = self._events, []
        return events

    def _send(self, frame: dict[str, Any]) -> None:
        self._frames.append(frame)

    def _close(self, code: CloseCode, reason: str) -> None:
        self.phase = Phase.CLOSED
        self._events.append(Close(code, reason))

    # ---------------------------------------------------------------- inputs

    def receive_data(self, data: bytes | str, now: float, decode: Decoder = decode_map) -> None:
        """Take one whole message received at ``now``: a WebSocket message (``str`` for a text
        frame) or an HTTP body, which ``decode`` turns into a map (msgpack by default; the HTTP
        transport's JSON decoder raises the same errors for what JSON cannot hold)."""
        if self.phase is Phase.HELLO:
            self._handshake(data, decode)
        elif self.phase is Phase.OPEN:
            self._receive(data, now, decode)

    def check_deadline(self, now: float) -> None:
        """Refuse a connection that sent no ``hello`` by :attr:`hello_deadline` (1008)."""
        if self.phase is Phase.HELLO and now >= self.hello_deadline:
            self._reject(
                ProtocolError(ErrorCode.BAD_REQUEST, "no hello in time"),
                CloseCode.POLICY_VIOLATION,
            )

    def request_done(self, request_id: str | int) -> None:
        """A request started by :class:`StartTurn` or a tracked handler ended (its id is free
        again; a ``cancel`` of an ended ``say`` is then ignored, not refused)."""
        kind = self.in_flight.pop(request_id, None)
        if kind == "say":
            self.recent[request_id] = None
            if len(self.recent) > RECENT_IDS:
                self.recent.popitem(last=False)

    def handler_refused(self, exc: ProtocolError, raw: dict[str, Any]) -> None:
        """A handler run by :class:`RunHandler` (untracked) or :class:`RunExtension` refused
        its message: answer as if refused here (the message's id, ``refused``, counted when a
        ``bad_request``)."""
        if self.phase is Phase.CLOSED:
            return
        if exc.request_id is None:
            exc.request_id = request_id_of(raw)
        self._refuse(exc, raw)

    # ---------------------------------------------------------------- handshake

    def _handshake(self, data: bytes | str, decode: Decoder) -> None:
        raw: dict[str, Any] | None = None
        try:
            if isinstance(data, str):
                raise DecodeError("messages must be binary msgpack frames, not text")
            raw = decode(data)
            if raw["type"] != "hello":
                raise DecodeError(
                    "the first message must be 'hello'", request_id=request_id_of(raw)
                )
            hello = validate(raw, CLIENT_MESSAGES)
            assert isinstance(hello, Hello)
        except ProtocolError as exc:
            if raw is not None:
                exc.refused = refused_type(raw)
            self._reject(exc, CloseCode.POLICY_VIOLATION)
            return
        expected = self.settings.token
        if expected is not None and not (
            hello.token is not None and hmac.compare_digest(hello.token.encode(), expected.encode())
        ):
            self._reject(
                ProtocolError(
                    ErrorCode.UNAUTHORIZED,
                    "missing or wrong token",
                    retryable=False,
                    refused="hello",
                ),
                CloseCode.UNAUTHORIZED,
            )
            return
        try:
            check_version(hello.protocol)
        except ProtocolError as exc:
            self._reject(exc, CloseCode.UNSUPPORTED_PROTOCOL)
            return
        self.client = hello.client
        self.phase = Phase.OPEN
        self._send(
            {
                "type": "welcome",
                "protocol": PROTOCOL_VERSION,
                "session": self.session_id,
                "server": self.parts.server_name,
                "models": list(self.parts.models),
                "features": list(self.parts.features),
                "limits": {
                    "max_message_bytes": self.settings.max_message_bytes,
                    "max_in_flight": self.settings.max_in_flight,
                },
            }
        )
        self._events.append(Opened(hello.client))

    def _reject(self, exc: ProtocolError, code: CloseCode) -> None:
        self._send(error_frame(exc))
        self._close(code, exc.message[:100])

    # ---------------------------------------------------------------- messages

    def _receive(self, data: bytes | str, now: float, decode: Decoder) -> None:
        """Every error raised while handling a message refuses it; a ``bad_request`` counts
        toward ``max_bad_messages`` in a row, any other answer resets the count."""
        raw: dict[str, Any] | None = None
        try:
            if isinstance(data, str):
                raise DecodeError("messages must be binary msgpack frames, not text")
            raw = decode(data)
            self._rate_limit(raw, now)
            message = validate(raw, CLIENT_MESSAGES)
            self._dispatch(message, raw)
        except ProtocolError as exc:
            if self._refuse(exc, raw):
                return
        self.bad_in_a_row = 0

    def _refuse(self, exc: ProtocolError, raw: dict[str, Any] | None) -> bool:
        """Send the error refusing ``raw``; True when it was a ``bad_request`` (counted)."""
        if exc.refused is None and raw is not None:
            exc.refused = refused_type(raw)
        self._send(error_frame(exc))
        if isinstance(exc, DecodeError):
            self.bad_in_a_row += 1
            if self.bad_in_a_row > self.settings.max_bad_messages:
                self._close(CloseCode.POLICY_VIOLATION, "too many bad messages")
            return True
        return False

    def _rate_limit(self, raw: dict[str, Any], now: float) -> None:
        """Raise ``rate_limited`` when the message's player (or the connection) is over its rate."""
        player = raw.get("player")
        key = player if isinstance(player, str) else None
        rate = self.settings.max_messages_per_s
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = self.parts.bucket(rate, now)
            if len(self.buckets) > MAX_RATE_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        wait_s = bucket.try_take(1.0, now)
        if wait_s:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {rate:g} messages per second"
                + (" for this player" if key is not None else ""),
                request_id=request_id_of(raw),
                retryable=True,
                retry_after_ms=max(1, int(wait_s * 1000 + 0.999)),
            )

    def _dispatch(self, message: Message, raw: dict[str, Any]) -> None:
        if isinstance(message, Say):
            self._start_say(message)
        elif isinstance(message, Cancel):
            self._cancel(message)
        elif isinstance(message, NpcDefine):
            self._define(message)
        elif isinstance(message, Ping):
            self._send({"type": "pong", **({"id": message.id} if message.id is not None else {})})
        elif isinstance(message, Hello):
            raise DecodeError("hello was already received")
        else:
            cancellable = self.parts.handler(message.type)
            request_id = getattr(message, "id", None)
            if cancellable and request_id is not None:
                self.admit(request_id, message.type)
                self._events.append(RunHandler(message, raw, tracked=True))
            elif cancellable is not None:
                self._events.append(RunHandler(message, raw, tracked=False))
            elif message.type.startswith("x."):
                self._events.append(RunExtension(raw))
            else:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_TYPE,
                    "field 'type': this message type is not enabled on this server",
                    request_id=request_id,
                )

    def admit(self, request_id: str | int, kind: str = "request") -> None:
        """Put ``request_id`` in flight for a request of type ``kind``, or refuse it (see
        :meth:`_check_admission`). End it with :meth:`request_done`."""
        self._check_admission(request_id)
        self.in_flight[request_id] = kind

    def _check_admission(self, request_id: str | int) -> None:
        """Refuse an id in flight already (``bad_request``), or one more request while
        ``max_in_flight`` run (``too_many_in_flight``)."""
        if request_id in self.in_flight:
            raise DecodeError(
                "field 'id': a request with this id is already in flight", request_id=request_id
            )
        if len(self.in_flight) >= self.settings.max_in_flight:
            raise ProtocolError(
                ErrorCode.TOO_MANY_IN_FLIGHT,
                f"at most {self.settings.max_in_flight} requests may be in flight",
                request_id=request_id,
            )

    def check_text(self, kind: str, text: str, request_id: str | int | None) -> None:
        """Refuse a line longer than ``max_text_chars`` code points with ``bad_request``."""
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise DecodeError(
                f"{kind}: field 'text': longer than {limit} characters", request_id=request_id
            )

    def _start_say(self, message: Say) -> None:
        self.check_text("say", message.text, message.id)
        self._check_admission(message.id)
        try:
            persona = self.parts.persona(message.npc, self.npcs)
        except ProtocolError as exc:
            exc.request_id = message.id
            raise
        self.in_flight[message.id] = "say"
        self._events.append(StartTurn(message.id, message, persona))

    def _define(self, message: NpcDefine) -> None:
        if message.persona is not None:
            persona = message.persona
        elif message.card is not None:
            try:
                persona = self.parts.card_persona(message.card)
            except ValueError as exc:
                raise DecodeError(f"npc.define: {exc}", request_id=message.id) from None
        else:
            raise DecodeError("npc.define needs 'persona' or 'card'", request_id=message.id)
        for index, spec in enumerate(persona.actions):
            problem = self.parts.action_problem(spec)
            if problem:
                where = f"persona.actions.{index}.parameters"
                raise DecodeError(f"npc.define: field '{where}': {problem}", request_id=message.id)
        self.npcs[message.npc] = persona
        self._send(ok_frame(message.id))

    def _cancel(self, message: Cancel) -> None:
        if message.id in self.in_flight:
            self._events.append(CancelRequest(message.id, barge_in=bool(message.barge_in)))
        elif message.id not in self.recent:
            # a scene reply's id ("<scene.say id>/<n>") lands here too: scene replies are
            # cancelled through their exchange
            raise DecodeError(
                "field 'id': no request with this id can be cancelled", request_id=message.id
            )
        # a cancel that crosses the reply's end on the wire is not an error: nothing to do
