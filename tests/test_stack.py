"""``python -m npcbridge.testing.stack`` as a process: the ports it is told to use, its logs."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from stack_process import StackProcess

from npcbridge.client import Client, NpcBridgeError

#: an API key whose every appearance in the stack's stderr would be a leak
CANARY = "gsk_CANARY5e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f"


def free_port() -> int:
    """A port the OS just reported free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_stack(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """Start the stack, read its JSON line, stop it; return the line (or its exit status when it
    printed none) and its stderr."""
    with StackProcess(*args, env=env, timeout_s=30) as stack:
        pass
    return (stack.info or {"exit": stack.proc.returncode}), stack.stderr


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


async def test_stack_logs_like_serve_and_redacts_the_key_an_upstream_echoes() -> None:
    with StackProcess("--api-key", CANARY, "--log-level", "debug", timeout_s=30) as stack:
        async with await Client.connect(stack.ws_url) as client:
            # an error body, then an in-stream error, each echoing the request's headers
            for hostile in ("[[echo_headers]] [[status:500]]", "[[echo_headers]] [[groq_error:x]]"):
                reply = await client.say("blacksmith", "p1", hostile, max_tokens=20)
                with contextlib.suppress(NpcBridgeError):
                    await reply.text()
    err = stack.stderr
    # the server's DEBUG lines and its turns' lines reached stderr in serve's format through the
    # redacting handler, and the key is in none of them (aiohttp logs no headers; the redaction
    # of lines that carry a key is tested in test_upstream_failures)
    assert " DEBUG " in err and "INFO npcbridge.pipeline.turn: turn npc=blacksmith" in err, err
    assert "CANARY" not in err
