"""Player-text directives (``[[reply:…]]``, ``[[status:429]]``…) and the default reply generator.

The package docstring lists every directive; :func:`parse_directives` finds them in the last
user message and :func:`reply_from_directives` turns them into a :class:`~.replies.Reply`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .replies import GARBAGE_BODIES, Reply, ToolCall, last_user_text

_NAME_RE = re.compile(r"[A-Za-z_]+")
_SLOW_WORDS = (
    "The road north winds past the old mill where the river bends and the crows gather at "
    "dusk, and travellers say the lanterns there burn blue when a storm is coming in from the "
    "hills beyond the ridge."
).split()
_JSON_DECODER = json.JSONDecoder()


def parse_directives(text: str) -> tuple[str, list[tuple[str, Any]]]:
    """Return ``text`` with ``[[…]]`` directives removed, and the directives as ``(name, arg)``.

    ``arg`` is ``None`` (no argument), a string, a parsed JSON value (``json``) or, for ``tool``,
    a ``(name, arguments)`` tuple. Unknown ``[[…]]`` spans are left in the text.
    """
    out: list[str] = []
    directives: list[tuple[str, Any]] = []
    pos = 0
    while True:
        start = text.find("[[", pos)
        if start < 0:
            out.append(text[pos:])
            break
        parsed = _parse_one(text, start)
        if parsed is None:
            out.append(text[pos : start + 2])
            pos = start + 2
            continue
        directive, end = parsed
        out.append(text[pos:start])
        directives.append(directive)
        pos = end
    clean = " ".join("".join(out).split())
    return clean, directives


_KNOWN_DIRECTIVES = {
    "reply",
    "words",
    "slow",
    "status",
    "cut",
    "stall",
    "tool",
    "json",
    "ttft",
    "tps",
    "stream_error",
    "trickle",
    "garbage",
    "echo_headers",
    "groq_error",
}


def _parse_one(text: str, start: int) -> tuple[tuple[str, Any], int] | None:
    m = _NAME_RE.match(text, start + 2)
    if m is None or m.group(0).lower() not in _KNOWN_DIRECTIVES:
        return None
    name = m.group(0).lower()
    i = m.end()
    if text.startswith("]]", i):
        return (name, None), i + 2
    if not text.startswith(":", i):
        return None
    i += 1
    if name == "json":
        try:
            value, j = _JSON_DECODER.raw_decode(text, i)
        except ValueError:
            return None
        if not text.startswith("]]", j):
            return None
        return (name, value), j + 2
    if name == "tool":
        colon = text.find(":", i)
        close = text.find("]]", i)
        if close < 0:
            return None
        if colon < 0 or colon > close:
            return (name, (text[i:close].strip(), {})), close + 2
        tool_name = text[i:colon].strip()
        try:
            args, j = _JSON_DECODER.raw_decode(text, colon + 1)
        except ValueError:
            return (name, (tool_name, text[colon + 1 : close])), close + 2
        if not text.startswith("]]", j):
            return None
        return (name, (tool_name, args)), j + 2
    close = text.find("]]", i)
    if close < 0:
        return None
    return (name, text[i:close]), close + 2


def _groq_error(arg: str | None) -> str | dict[str, Any]:
    """``[[groq_error:MESSAGE]]``: the message; ``[[groq_error:400]]`` or
    ``[[groq_error:400:MESSAGE]]``: an error object carrying that ``status_code``."""
    status, sep, message = (arg or "").partition(":")
    if status.isdigit() and len(status) == 3:
        return {
            "message": message or "stream stopped",
            "type": "invalid_request_error",
            "status_code": int(status),
        }
    return arg or "stream stopped"


def _words(n: int) -> str:
    words = [_SLOW_WORDS[i % len(_SLOW_WORDS)] for i in range(n)]
    return " ".join(words) + ("." if words else "")


def _example_from_schema(schema: Any, text: str, depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > 16:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            for option in options:
                if isinstance(option, Mapping) and option.get("type") != "null":
                    return _example_from_schema(option, text, depth + 1)
            return None
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), None)
    if typ == "object" or (typ is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {k: _example_from_schema(v, text, depth + 1) for k, v in props.items()}
    if typ == "array":
        return []
    if typ == "string":
        return text
    if typ in ("integer", "number"):
        return schema.get("minimum", 0)
    if typ == "boolean":
        return False
    return None


def default_reply(body: Mapping[str, Any]) -> str:
    """The default generator: a deterministic reply derived from the request body.

    ``"Well met. You said: <last user text without directives, first 20 words>."``; JSON when
    the request's ``response_format`` asks for it (see the module docstring).
    """
    messages = body.get("messages") or []
    clean, _ = parse_directives(last_user_text(messages))
    words = clean.split()
    sentence = f"Well met. You said: {' '.join(words[:20])}." if words else "Well met, traveller."
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            return json.dumps({"reply": sentence})
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            value = _example_from_schema(schema, sentence) if schema else None
            return json.dumps(value if value is not None else {"reply": sentence})
    return sentence


def reply_from_directives(
    directives: list[tuple[str, Any]], *, slow_tokens_per_s: float, stall_s: float
) -> Reply:
    """The reply the directives ask for (``slow_tokens_per_s``: pace of ``[[slow]]``;
    ``stall_s``: length of a ``[[stall]]`` without argument). A directive whose argument does
    not parse is ignored."""
    reply = Reply()
    tools: list[ToolCall] = []
    for name, arg in directives:
        try:
            if name == "reply":
                reply.text = "" if arg is None else str(arg)
            elif name == "words":
                reply.text = _words(int(arg))
            elif name == "slow":
                reply.text = _words(200)
                reply.tokens_per_s = slow_tokens_per_s
            elif name == "status":
                reply.status = int(arg)
                if reply.status == 429 and reply.retry_after is None:
                    reply.retry_after = 1
            elif name == "cut":
                reply.cut_after_chunks = int(arg)
            elif name == "stall":
                reply.stall_s = stall_s if arg in (None, "") else float(arg)
            elif name == "tool":
                tool_name, args = arg
                tools.append(ToolCall(name=tool_name, arguments=args))
            elif name == "json":
                reply.json = arg
            elif name == "stream_error":
                reply.stream_error = "" if arg is None else str(arg)
            elif name == "ttft":
                reply.ttft_ms = float(arg)
            elif name == "tps":
                reply.tokens_per_s = float(arg)
            elif name == "trickle":
                reply.text = _words(1000)
                reply.tokens_per_s = 1 / (float(arg) if arg else 1.0)
            elif name == "garbage":
                reply.garbage = str(arg) if arg in GARBAGE_BODIES else "invalid_json"
            elif name == "echo_headers":
                reply.echo_headers = True
            elif name == "groq_error":
                reply.groq_error = _groq_error(arg)
        except (TypeError, ValueError):
            continue
    if tools:
        reply.tool_calls = tools
        if reply.text is None and reply.json is None:
            reply.text = "As you wish."
    return reply
