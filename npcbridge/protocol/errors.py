"""Error codes and close codes of protocol v1, and the exceptions that carry them.

Every failure a peer can see is one of :class:`ErrorCode`. Inside the server, code that wants to
answer a message or a request with an error raises :class:`ProtocolError`; the connection layer
(:mod:`npcbridge.protocol.connection`, and the session for a running request) turns it into an
``error`` frame (:func:`npcbridge.protocol.frames.error_frame`). The hierarchy is flat on
purpose::

    Exception
    └── ProtocolError        an error the peer is told about: code, message, retryable,
        │                    retry_after_ms, request_id, refused, extra fields
        │                    - unknown_type (codec.validate, the connection's dispatch)
        │                    - unauthorized, unsupported_protocol (handshake: closes 4001 / 4002)
        │                    - rate_limited, too_many_in_flight, unknown_npc (at the door)
        │                    - budget_exceeded, upstream_*, filtered, internal (a running turn)
        └── DecodeError      not a valid message, always ``bad_request``; the only kind that
                             counts toward ``max_bad_messages`` (more in a row close 1008)
                             - codec.unpack / decode_map / validate (bytes, map, fields)
                             - the connection: text frame, not ``hello`` first, a second
                               ``hello``, duplicate id, cancel of an unknown id, invalid
                               ``npc.define``, text over ``max_text_chars``

An error raised before a message was accepted refuses it (``refused`` set to the message's
type); one raised by a request that was accepted ends it (no ``refused``). Exceptions that are
not a :class:`ProtocolError` never reach the wire: the server logs them and answers
``internal``. A ``ValueError`` from a Character Card becomes a :class:`DecodeError`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """The ``code`` field of an ``error`` message."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_NPC = "unknown_npc"
    UNAUTHORIZED = "unauthorized"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXCEEDED = "budget_exceeded"
    TOO_MANY_IN_FLIGHT = "too_many_in_flight"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    FILTERED = "filtered"
    INTERNAL = "internal"


#: Codes after which retrying the same request later may succeed.
RETRYABLE_CODES = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.TOO_MANY_IN_FLIGHT,
        ErrorCode.UPSTREAM_ERROR,
        ErrorCode.UPSTREAM_TIMEOUT,
        ErrorCode.INTERNAL,
    }
)


class CloseCode(IntEnum):
    """WebSocket close codes the server uses."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    UNAUTHORIZED = 4001
    UNSUPPORTED_PROTOCOL = 4002


class ProtocolError(Exception):
    """An error the peer is told about with an ``error`` frame."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        request_id: str | int | None = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        refused: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retryable = code in RETRYABLE_CODES if retryable is None else retryable
        self.retry_after_ms = retry_after_ms
        #: the ``type`` of the message this error refuses (it was not accepted); None when the
        #: error ends a request that was accepted (``refused`` on the wire, docs/protocol.md)
        self.refused = refused
        #: extra fields of the ``error`` frame (e.g. ``supported`` of ``unsupported_protocol``)
        self.fields: dict[str, object] = {}


class DecodeError(ProtocolError):
    """Bytes that do not hold a valid protocol message."""

    def __init__(
        self, message: str, *, request_id: str | int | None = None, refused: str | None = None
    ) -> None:
        super().__init__(
            ErrorCode.BAD_REQUEST, message, request_id=request_id, retryable=False, refused=refused
        )
