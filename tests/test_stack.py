"""``python -m npcbridge.testing.stack`` as a process: the ports it is told to use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any


def free_port() -> int:
    """A port the OS just reported free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_stack(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """Start the stack, read its JSON line, close its stdin; return the line and stderr."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NPCBRIDGE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "npcbridge.testing.stack", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base | (env or {}),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    _, err = proc.communicate("", timeout=30)  # stdin closes: the stack stops
    return (json.loads(line) if line else {"exit": proc.returncode}), err


def test_stack_listens_on_the_ports_it_is_given() -> None:
    ws, upstream, control = free_port(), free_port(), free_port()
    info, _ = run_stack(
        "--port", str(ws), "--upstream-port", str(upstream), "--control-port", str(control)
    )
    assert info["ws_url"] == f"ws://127.0.0.1:{ws}/"
    assert info["upstream_url"].startswith(f"http://127.0.0.1:{upstream}/")
    assert info["control_url"] == f"http://127.0.0.1:{control}"


def test_stack_honours_npcbridge_port() -> None:
    ws = free_port()
    info, _ = run_stack(env={"NPCBRIDGE_PORT": str(ws)})
    assert info["ws_url"] == f"ws://127.0.0.1:{ws}/"


def test_stack_on_a_taken_port_says_so_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        info, err = run_stack("--port", str(taken.getsockname()[1]))
    assert info == {"exit": 2}
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "cannot listen" in lines[0], err
