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
from collections.abc import Callable
from typing import Any

log = logging.getLogger("npcbridge.pipeline.turn")

#: a note the plugin manager adds to an exception raised by an implementation
_NOTE_PREFIX = "raised by "


class HookAnswerError(TypeError):
    """A hook returned a value of the wrong type (``hook`` names it)."""

    def __init__(self, hook: str, message: str) -> None:
        super().__init__(message)
        self.hook = hook


def _strings(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    )


#: hook -> (check of one implementation's answer, what it should be)
ANSWERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "npcbridge_persona": (_strings, "a str or a list of str"),
    "npcbridge_recall": (_messages, "a list of {role, content} messages"),
    "npcbridge_select_model": (lambda v: v is None or isinstance(v, str), "a model id (str)"),
    "npcbridge_post_process": (lambda v: isinstance(v, str), "the final text (str)"),
}


def checked(hook: str, answer: Any, *, each: bool = False) -> Any:
    """Return ``answer`` (each item of it when ``each``) if it has the type ``hook`` must
    return, else raise :class:`HookAnswerError` naming the hook."""
    check, expected = ANSWERS[hook]
    for value in answer if each else [answer]:
        if not check(value):
            raise HookAnswerError(hook, f"returned a {type(value).__name__}, not {expected}")
    return answer


def culprit(exc: BaseException) -> str:
    """``hook <name> of plugin <name>`` from the plugin manager's note; ``hook <name>`` for a
    wrong answer (the answers of all implementations arrive together)."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_NOTE_PREFIX):
            return note[len(_NOTE_PREFIX) :]
    if isinstance(exc, HookAnswerError):
        return f"hook {exc.hook}"
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
