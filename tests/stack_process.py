"""``python -m npcbridge.testing.stack`` as a child process, for the suites that need a server in
another process (the Lua and Godot clients, the stack's own command line)::

    with start_stack("--token", "s3cret") as stack:
        run_client(stack.ws_url, stack.control_url)
    assert "Traceback" not in stack.stderr

The stack prints one JSON line (``ws_url``, ``upstream_url``, ``control_url``) once it listens,
and stops when its stdin closes. Its stderr is read all along, so a chatty stack (``--log-level
debug``) never blocks on a full pipe. ``NPCBRIDGE_*`` variables of the calling environment are
left out (a developer's ``NPCBRIDGE_PORT`` must not pin a test to a fixed port); ``env`` adds
the ones a test means.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from npcbridge.testing.processes import terminate

ROOT = Path(__file__).resolve().parent.parent


class StackProcess:
    """A started stack: ``info`` (its JSON line, empty when it exited without listening),
    ``stderr`` (all it wrote so far), ``close()`` (stdin closed, then terminate, then kill)."""

    def __init__(
        self, *args: str, env: Mapping[str, str] | None = None, timeout_s: float = 60
    ) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("NPCBRIDGE_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "npcbridge.testing.stack", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
            env=base | dict(env or {}),
        )
        self._lines: list[str] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self.info: dict[str, Any] = self._read_info(timeout_s)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.append(line)

    def _read_info(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=timeout_s):
                self.close()
                raise RuntimeError(f"the test stack printed nothing in {timeout_s:g} s")
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {}

    @property
    def ws_url(self) -> str:
        """The npcbridge server's WebSocket URL."""
        return str(self.info["ws_url"])

    @property
    def upstream_url(self) -> str:
        """The fake upstream's base URL."""
        return str(self.info["upstream_url"])

    @property
    def control_url(self) -> str:
        """The stack's control endpoint (scripts the fake upstream, restarts the server)."""
        return str(self.info["control_url"])

    @property
    def stderr(self) -> str:
        """What the stack wrote to stderr so far (all of it once closed)."""
        return "".join(self._lines)

    def close(self, timeout_s: float = 15) -> int:
        """Stop the stack (its stdin closes; terminate, then kill, when it does not exit in
        time) and return its exit status."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                terminate(self.proc)
        self._drain.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        return self.proc.returncode

    def __enter__(self) -> StackProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_stack(*args: str, env: Mapping[str, str] | None = None) -> StackProcess:
    """A stack that listens; RuntimeError (with its stderr's tail) when it exits instead."""
    stack = StackProcess(*args, env=env)
    if not stack.info:
        stack.close()
        raise RuntimeError(f"the test stack exited: {stack.stderr[-2000:]}")
    return stack
