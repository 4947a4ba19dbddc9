"""Child processes of tests: the one way they are stopped when asking did not end them."""

from __future__ import annotations

import subprocess
from typing import Any


def terminate(proc: subprocess.Popen[Any], grace_s: float = 5.0) -> int:
    """SIGTERM ``proc``, SIGKILL it when it has not exited after ``grace_s`` seconds, wait for
    it, and return its exit status."""
    proc.terminate()
    try:
        return proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
