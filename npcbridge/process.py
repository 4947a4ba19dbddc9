"""What npcbridge's long-running programs share: ``npcbridge serve``, the test stack, the fake
upstream's command line and the benchmark server.

Their logs never carry a credential: :func:`configure_logging` puts a :class:`RedactSecrets`
filter on every handler of the root logger, which rewrites each record that reaches them (the
HTTP libraries' DEBUG lines and formatted tracebacks included) with the API keys registered by
:func:`add_secret`, ``Authorization`` values and bearer tokens replaced by ``[redacted]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from pathlib import Path

#: the log line format of every npcbridge program
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: what a redacted value is replaced by
REDACTED = "[redacted]"

#: secrets shorter than this are not looked for (placeholders such as "none")
_MIN_SECRET = 8

_secrets: set[str] = set()

# ``Authorization: Bearer x``, ``"authorization": "Basic x"``, ``(b'authorization', b'x')``,
# a bare ``Bearer x``, and the shapes of Groq and OpenAI keys.
_SEPARATOR = r"""["']?\s*[:=,]\s*(?-i:b(?=["']))?["']?\s*"""
_CREDENTIALS = re.compile(
    rf"(?i)(\b(?:proxy-)?authorization{_SEPARATOR}(?:(?:bearer|basic|token)\s+)?"
    rf"|\b(?:x-)?api[-_]?key{_SEPARATOR}|\bbearer\s+)"
    r"""[^\s'",;}\])]+"""
    r"|\bgsk_[A-Za-z0-9]{8,}|\bsk-[A-Za-z0-9_-]{16,}"
)


def add_secret(value: str | None) -> None:
    """Have every log record from now on show ``value`` as ``[redacted]``."""
    if value and len(value) >= _MIN_SECRET:
        _secrets.add(value)


#: a word every match of the credentials pattern contains (case-folded): a record without one
#: (a turn's log line) skips the pattern, which costs more than the rest of the record's logging
_CUES = ("authorization", "api", "bearer", "gsk_", "sk-")


def redact(text: str) -> str:
    """``text`` with registered secrets, ``Authorization`` values and bearer tokens redacted."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    folded = text.casefold()
    if not any(cue in folded for cue in _CUES):
        return text
    return _CREDENTIALS.sub(_replace, text)


def _replace(match: re.Match[str]) -> str:
    prefix = match.group(1)
    return f"{prefix}{REDACTED}" if prefix is not None else REDACTED


class RedactSecrets(logging.Filter):
    """Redacts a record's message, traceback and stack (see :func:`redact`) before it is
    written; the record is changed in place, so every handler after this one sees it redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` redacted; never drops it."""
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # format the traceback now: formatters use this text instead of the live exception
            # (whose message may be upstream-written)
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put one :class:`RedactSecrets` on every handler of ``logger`` (default: the root logger,
    and the handler of last resort that logging uses when there is none)."""
    handlers = list((logger or logging.getLogger()).handlers)
    if logger is None and logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())


#: HTTP libraries that log every request they send at INFO; above DEBUG they log warnings only
#: (each turn's own line already names the upstream outcome, and the request line doubled the
#: log and its cost per turn)
QUIET_AT_INFO = ("httpx", "httpx2")


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` ("info", "DEBUG", ...) in :data:`LOG_FORMAT`, redacted."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    quiet = logging.getLogger().getEffectiveLevel() > logging.DEBUG
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
    install_redaction()


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (a reader never sees half a file), readable
    by this user only: the files the workers of one server share (their listeners, their
    metrics)."""
    part = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(part, path)


def stop_event() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (call it inside the running loop, early: a signal
    that arrives during start-up then still ends the program cleanly)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # platforms without signal handlers
            loop.add_signal_handler(sig, stop.set)
    return stop
