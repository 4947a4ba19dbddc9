"""What the pipeline does when a plugin's hook fails: the answer checks and the log lines.

A turn always ends with an answer, whatever a hook raises or returns: the pipeline checks the
answers of the hooks whose result it uses (:func:`checked`), turns any failure into an
``internal`` error for the client (never the exception's text), and logs it here, naming the
request, the hook and, when known, the plugin. The traceback of a failure is logged the first
time that hook fails that way; repeats are one line each, so a broken plugin cannot flood the
log with a traceback per turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..protocol.codec import pack

log = logging.getLogger("npcbridge.pipeline.turn")

#: a note the plugin manager adds to an exception raised by an implementation
_NOTE_PREFIX = "raised by "


class HookAnswerError(TypeError):
    """A hook returned a value of the wrong type (``hook`` names it, ``plugin`` the plugin
    when one implementation's answer was checked alone)."""

    def __init__(self, hook: str, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.hook = hook
        self.plugin = plugin


def _strings(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    )


def _fields(value: Any) -> bool:
    """None, or a map of str keys that msgpack can encode (it goes into a frame as is)."""
    if value is None:
        return True
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        return False
    try:
        pack(dict(value))
    except Exception:  # any type msgpack refuses, an integer too big, a cycle
        return False
    return True


#: hook -> (check of one implementation's answer, what it should be); the plugin manager checks
#: each answer of a chain hook here as it is given, callers check the other hooks' answers
ANSWERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "npcbridge_persona": (_strings, "a str or a list of str"),
    "npcbridge_recall": (_messages, "a list of {role, content} messages"),
    "npcbridge_select_model": (lambda v: v is None or isinstance(v, str), "a model id (str)"),
    "npcbridge_transform_delta": (lambda v: isinstance(v, str), "the text (str)"),
    "npcbridge_post_process": (lambda v: isinstance(v, str), "the final text (str)"),
    "npcbridge_reply_fields": (_fields, "a map of str keys to msgpack-encodable values"),
}


def checked(hook: str, answer: Any, *, each: bool = False, plugin: str | None = None) -> Any:
    """Return ``answer`` (each item of it when ``each``) if it has the type ``hook`` must
    return, else raise :class:`HookAnswerError` naming the hook (and ``plugin``, the plugin
    that gave ``answer``, when the caller called one implementation)."""
    check, expected = ANSWERS[hook]
    for value in answer if each else [answer]:
        if not check(value):
            message = f"returned a {type(value).__name__}, not {expected}"
            raise HookAnswerError(hook, message, plugin)
    return answer


def culprit(exc: BaseException) -> str:
    """``hook <name> of plugin <name>`` from the plugin manager's note or a wrong answer
    checked alone (a chain's answers are); ``hook <name>`` for a wrong answer among the answers
    of an ``all`` or ``firstresult`` hook (they arrive together)."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_NOTE_PREFIX):
            return note[len(_NOTE_PREFIX) :]
    if isinstance(exc, HookAnswerError):
        return f"hook {exc.hook}" + (f" of plugin {exc.plugin}" if exc.plugin else "")
    return "the turn's own code"


class HookFailures:
    """Logs hook failures: one traceback per kind of failure, one line per repeat."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def report(self, request_id: str | int, npc: str, stage: str, exc: BaseException) -> None:
        """Log that request ``request_id`` failed in ``stage`` because of ``exc``."""
        where = culprit(exc)
        key = (where, type(exc).__name__)
        first = key not in self._seen
        self._seen.add(key)
        log.error(
            "request %r for npc %s failed in %s: %s: %s (%s)%s",
            request_id,
            npc,
            stage,
            type(exc).__name__,
            exc,
            where,
            "" if first else " [traceback logged before]",
            exc_info=exc if first else None,
        )
