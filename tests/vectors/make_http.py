"""The HTTP transport's requests and answers, for ``http.json`` (written by ``make_vectors.py``).

One flow on a fresh server (token ``s3cret``, default limits, the fake upstream behind it):
replayed in order, every request gets the answer listed. A request has ``method``, ``path``
(``{session}`` / ``{other}`` stand for the keys the ``open`` / ``open-bearer`` answers gave),
``headers``, and a body as ``json`` (a value to send as JSON), ``raw`` (text sent as it is) or
``msgpack_hex``; ``fill`` pads one field of the JSON body (``{"field", "char", "count"}``). An
answer has ``status``, ``headers`` it must carry, and its body as ``json`` or ``msgpack_hex``,
or ``events`` (the first server-sent events of a stream, after its opening comment line, as
text). In ``json``, the string ``"*"`` matches any value (the session key, timings, costs);
everything else must be equal.
"""

from __future__ import annotations

from typing import Any

from npcbridge.protocol import ErrorCode, ProtocolError, pack
from npcbridge.protocol.frames import error_frame, ok_frame
from npcbridge.protocol.json_codec import CLIENT_BYTE_FIELDS, encode_json

ANY = "*"
TOKEN = "s3cret"
JSON = {"Content-Type": "application/json"}
HELLO = {"type": "hello", "protocol": 1, "client": "luanti/5.6 npcbridge/0.1", "token": TOKEN}
DEFINE = {"type": "npc.define", "id": "d1", "npc": "smith", "persona": {"name": "Brom"}}
REPLY = "Aye, lad. Leave it on the anvil."
SAY = {"type": "say", "id": 1, "npc": "smith", "player": "steve", "text": f"[[reply:{REPLY}]]"}
WELCOME = {
    "type": "welcome",
    "protocol": 1,
    "session": ANY,
    "server": ANY,
    "models": ANY,
    "features": ANY,
    "limits": {"max_message_bytes": 65536, "max_in_flight": 8},
}
MESSAGES = "/v1/sessions/{session}/messages"


def _error(code: ErrorCode, message: str, **options: Any) -> dict[str, Any]:
    return error_frame(ProtocolError(code, message, **options))


UNKNOWN_NPC = _error(
    ErrorCode.UNKNOWN_NPC, "field 'npc': unknown npc; define it first", request_id=2, refused="say"
)
NOT_JSON = _error(
    ErrorCode.BAD_REQUEST,
    "not a JSON value: Expecting property name enclosed in double quotes at character 15",
)
INVALID_FIELD = _error(
    ErrorCode.BAD_REQUEST,
    "say: field 'player': Input should be a valid string",
    request_id=3,
    refused="say",
)


def _event(seq: int, frame: dict[str, Any]) -> str:
    """One server-sent event as the stream writes it."""
    return f"id: {seq}\nevent: {frame['type']}\ndata: {encode_json(frame).decode()}\n\n"


def _reply(request_id: int, merged_text: str) -> list[dict[str, Any]]:
    """The frames of one finished reply whose deltas were merged."""
    return [
        {"type": "reply.start", "id": request_id, "npc": "smith", "model": ANY},
        {"type": "reply.delta", "id": request_id, "seq": 0, "text": merged_text},
        {
            "type": "reply.end",
            "id": request_id,
            "npc": "smith",
            "model": ANY,
            "text": merged_text,
            "finish": "stop",
            "usage": ANY,
            "cost_usd": ANY,
            "timing": ANY,
        },
    ]


def _case(name: str, note: str, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    request.setdefault("headers", {})
    answer.setdefault("headers", {})
    return {"name": name, "note": note, "request": request, "answer": answer}


def cases() -> list[dict[str, Any]]:
    """The flow, in order."""
    unknown = _error(ErrorCode.BAD_REQUEST, "unknown session")
    bad = ErrorCode.BAD_REQUEST
    return [
        _case(
            "open",
            "a hello opens a session; the token is in the body",
            {"method": "POST", "path": "/v1/sessions", "headers": JSON, "json": HELLO},
            {"status": 201, "json": {"session": ANY, "welcome": WELCOME}},
        ),
        _case(
            "open-bearer",
            "the token may instead be an Authorization header",
            {
                "method": "POST",
                "path": "/v1/sessions",
                "headers": {**JSON, "Authorization": f"Bearer {TOKEN}"},
                "json": {k: v for k, v in HELLO.items() if k != "token"},
            },
            {"status": 201, "json": {"session": ANY, "welcome": WELCOME}},
        ),
        _case(
            "define",
            "one message per POST; the answer lists what it produced and the session cursor",
            {"method": "POST", "path": MESSAGES, "headers": JSON, "json": DEFINE},
            {"status": 200, "json": {"cursor": 1, "messages": [ok_frame("d1")]}},
        ),
        _case(
            "ping",
            "a message without an id: what the rules answered at once",
            {"method": "POST", "path": MESSAGES, "json": {"type": "ping"}},
            {"status": 200, "json": {"cursor": 2, "messages": [{"type": "pong"}]}},
        ),
        _case(
            "say-wait",
            "?wait holds the answer until the reply ended; merge=1 merges its deltas",
            {"method": "POST", "path": MESSAGES + "?wait=25&merge=1", "json": SAY},
            {"status": 200, "json": {"cursor": 5, "messages": _reply(1, REPLY)}},
        ),
        _case(
            "poll",
            "every message from a cursor on (0: the oldest kept)",
            {"method": "GET", "path": MESSAGES + "?cursor=0&merge=1"},
            {
                "status": 200,
                "json": {
                    "cursor": 5,
                    "messages": [ok_frame("d1"), {"type": "pong"}, *_reply(1, REPLY)],
                },
            },
        ),
        _case(
            "poll-empty",
            "nothing new within the wait: an empty list and the same cursor",
            {"method": "GET", "path": MESSAGES + "?cursor=5&wait=0.2"},
            {"status": 200, "json": {"cursor": 5, "messages": []}},
        ),
        _case(
            "ping-msgpack",
            "a msgpack body gets a msgpack answer",
            {
                "method": "POST",
                "path": MESSAGES,
                "headers": {"Content-Type": "application/msgpack"},
                "msgpack_hex": pack({"type": "ping", "id": "m"}).hex(),
            },
            {
                "status": 200,
                "headers": {"content-type": "application/msgpack"},
                "msgpack_hex": pack({"cursor": 6, "messages": [{"type": "pong", "id": "m"}]}).hex(),
            },
        ),
        _case(
            "unknown-npc",
            "a message refused at once: its error is the body, with the code's status",
            {
                "method": "POST",
                "path": MESSAGES,
                "json": {**SAY, "id": 2, "npc": "ghost"},
            },
            {"status": 422, "json": UNKNOWN_NPC},
        ),
        _case(
            "not-json",
            "an undecodable body is refused as undecodable msgpack is over WebSocket",
            {"method": "POST", "path": MESSAGES, "raw": '{"type": "say",'},
            {"status": 400, "json": NOT_JSON},
        ),
        _case(
            "invalid-field",
            "validation errors name the field, never the value",
            {
                "method": "POST",
                "path": MESSAGES,
                "json": {"type": "say", "id": 3, "npc": "smith", "player": 7, "text": "hi"},
            },
            {"status": 400, "json": INVALID_FIELD},
        ),
        _case(
            "events",
            "server-sent events from a cursor on (the stream stays open)",
            {
                "method": "GET",
                "path": "/v1/sessions/{session}/events?cursor=5",
                "headers": {"Accept": "text/event-stream"},
            },
            {
                "status": 200,
                "headers": {"content-type": "text/event-stream; charset=utf-8"},
                "events": "".join(
                    _event(seq, frame)
                    for seq, frame in enumerate(
                        [{"type": "pong", "id": "m"}, UNKNOWN_NPC, NOT_JSON, INVALID_FIELD], 5
                    )
                ),
            },
        ),
        _case(
            "cursor-acknowledges",
            "a poll acknowledges everything before its cursor",
            {"method": "GET", "path": MESSAGES + "?cursor=9"},
            {"status": 200, "json": {"cursor": 9, "messages": []}},
        ),
        _case(
            "cursor-expired",
            "a cursor older than what is kept",
            {"method": "GET", "path": MESSAGES + "?cursor=1"},
            {"status": 410, "json": _error(bad, "cursor expired")},
        ),
        _case(
            "cursor-ahead",
            "a cursor the session has not reached",
            {"method": "GET", "path": MESSAGES + "?cursor=99"},
            {"status": 400, "json": _error(bad, "field 'cursor': ahead of the session's messages")},
        ),
        _case(
            "too-large",
            "a body over server.max_message_bytes (the connection is closed after the answer)",
            {
                "method": "POST",
                "path": MESSAGES,
                "json": {**SAY, "id": 4, "text": ""},
                "fill": {"field": "text", "char": "x", "count": 70000},
            },
            {"status": 413, "json": _error(bad, "request body too large")},
        ),
        _case(
            "wrong-method",
            "the Allow header lists what the endpoint serves",
            {"method": "PUT", "path": MESSAGES},
            {
                "status": 405,
                "headers": {"allow": "GET, POST"},
                "json": _error(bad, "method not allowed"),
            },
        ),
        _case(
            "no-token",
            "a hello without the server's token",
            {
                "method": "POST",
                "path": "/v1/sessions",
                "json": {k: v for k, v in HELLO.items() if k != "token"},
            },
            {
                "status": 401,
                "json": _error(
                    ErrorCode.UNAUTHORIZED,
                    "missing or wrong token",
                    retryable=False,
                    refused="hello",
                ),
            },
        ),
        _case(
            "bad-version",
            "a protocol version the server does not speak",
            {"method": "POST", "path": "/v1/sessions", "json": {**HELLO, "protocol": 9}},
            {
                "status": 400,
                "json": {
                    **_error(
                        ErrorCode.UNSUPPORTED_PROTOCOL,
                        "field 'protocol': this version is not supported; supported versions: 1",
                        refused="hello",
                    ),
                    "supported": [1],
                },
            },
        ),
        _case(
            "delete",
            "ends the session; its turns are cancelled",
            {"method": "DELETE", "path": "/v1/sessions/{session}"},
            {"status": 200, "json": {"closed": True}},
        ),
        _case(
            "unknown-session",
            "any request for an ended, expired or unknown session",
            {"method": "GET", "path": MESSAGES},
            {"status": 404, "json": unknown},
        ),
        _case(
            "delete-other",
            "the second session ends too",
            {"method": "DELETE", "path": "/v1/sessions/{other}"},
            {"status": 200, "json": {"closed": True}},
        ),
    ]


def document() -> dict[str, Any]:
    """The whole ``http.json``."""
    return {
        "about": __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        "server": {"token": TOKEN, "max_message_bytes": 65536},
        "any": ANY,
        "byte_fields": {k: list(v) for k, v in sorted(CLIENT_BYTE_FIELDS.items())},
        "cases": cases(),
    }
