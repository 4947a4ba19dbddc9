"""``npcbridge serve`` and ``npcbridge chat`` as real processes, configured by environment."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from npcbridge.client import Client
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.serving import serving


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NPCBRIDGE_", "GROQ_"))}
    env["NPCBRIDGE_STORE"] = str(tmp_path / "cli.db")
    return env


async def test_serve_uses_env_and_logs_connections_and_turns(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    config = tmp_path / "npcbridge.toml"
    config.write_text('[npcs.smith]\nname = "Brom"\ndescription = "A blacksmith."\n')
    env = base_env(tmp_path) | {
        "GROQ_API_KEY": "gsk_test_key",
        "NPCBRIDGE_BASE_URL": fake_upstream.base_url,
        "NPCBRIDGE_TOKEN": "tok",
        "NPCBRIDGE_CONFIG": str(config),
    }
    async with serving(env) as served:
        async with await Client.connect(served.url, token="tok") as client:
            assert "offline" not in client.welcome["features"]
            text = await (await client.say("smith", "p1", "[[reply:Aye.]]")).text()
            assert text == "Aye."
        assert fake_upstream.requests[0].headers["authorization"] == "Bearer gsk_test_key"
    assert served.returncode == 0
    log = served.log
    assert re.search(r"connection session=\w+ peer=.* open", log)
    turn = re.search(r"turn npc=smith .*model=(\S+) .*ttft_ms=\S+ .*tokens_out=1 cost_usd=\S+", log)
    assert turn and turn.group(1) == "llama-3.1-8b-instant"
    assert "gsk_test_key" not in log


async def test_serve_without_key_is_offline_and_says_so(tmp_path: Path) -> None:
    async with serving(base_env(tmp_path)) as served:
        async with await Client.connect(served.url) as client:
            assert "offline" in client.welcome["features"]
            await client.define_npc("elf", {"name": "Aelindra"})
            reply = await client.say("elf", "p1", "Who are you?")
            assert "Aelindra" in await reply.text()
    assert served.returncode == 0
    assert "OFFLINE MODE" in served.log


async def test_chat_streams_a_reply(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    env = base_env(tmp_path) | {"GROQ_API_KEY": "k", "NPCBRIDGE_BASE_URL": fake_upstream.base_url}
    async with serving(env) as served:
        chat = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "npcbridge.cli",
            "chat",
            "--npc",
            "innkeeper",
            "--url",
            served.url,
            "--persona",
            "A cheerful innkeeper.",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(
            chat.communicate(b"[[reply:Welcome, *smiles* friend!]]\n"), 30
        )
        assert chat.returncode == 0
        text = out.decode()
        assert "innkeeper> Welcome, friend!" in text and "*smiles*" in text
    assert served.returncode == 0


def test_cli_bad_config_names_the_field(tmp_path: Path) -> None:
    env = {**os.environ, "NPCBRIDGE_PORT": "not-a-port"}
    env.pop("GROQ_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "npcbridge.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "server.port" in lines[0]


def test_cli_refuses_public_bind_without_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPCBRIDGE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "npcbridge.cli", "serve", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "server.token" in proc.stderr


def test_cli_bad_plugin(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "npcbridge.cli",
            "serve",
            "--port",
            "0",
            "--plugin",
            "nope_mod:x",
            "--store",
            str(tmp_path / "s.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "nope_mod" in proc.stderr


async def test_serve_log_level_flag(tmp_path: Path) -> None:
    # at this level the "listening on" line is not written: ready once the warning is
    async with serving(
        base_env(tmp_path), "--log-level", "warning", ready="OFFLINE MODE"
    ) as served:
        first = served.head.splitlines()[0]
        assert "WARNING" in first and "OFFLINE MODE" in first
    assert served.returncode == 0
    assert "INFO" not in served.log


async def test_serve_settles_the_heap_once_listening(tmp_path: Path) -> None:
    """``npcbridge serve`` freezes its start-up objects out of the garbage collector."""
    async with serving(base_env(tmp_path), "--log-level", "debug") as served:
        async with await Client.connect(served.url) as client:
            await client.define_npc("elf", {"name": "Aelindra"})
            assert await (await client.say("elf", "p1", "Hello")).text()
    assert served.returncode == 0
    match = re.search(r"heap settled: (\d+) start-up objects frozen", served.log)
    assert match and int(match.group(1)) > 10_000


@asynccontextmanager
async def chatting(env: dict[str, str], *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``npcbridge chat`` with pipes on stdin, stdout and stderr; killed at the end of the block
    if it is still running."""
    chat = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "npcbridge.cli",
        "chat",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield chat
    finally:
        if chat.returncode is None:
            chat.kill()
            await chat.wait()


async def read_until(stream: asyncio.StreamReader, needle: str) -> str:
    """Read ``stream`` until ``needle`` appeared; return everything read."""
    seen = ""
    while needle not in seen:
        chunk = await asyncio.wait_for(stream.read(256), 30)
        assert chunk, f"stream ended before {needle!r}: {seen!r}"
        seen += chunk.decode()
    return seen


def closed_port() -> int:
    """A loopback port nothing listens on (the OS just gave it out and it was closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_chat_failures_to_connect_are_one_line(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    not_npcbridge = "ws://" + fake_upstream.base_url.split("://", 1)[1].split("/", 1)[0] + "/"
    urls = {
        "http://127.0.0.1:8765/": "ws:// or wss://",
        "127.0.0.1:8765": "ws:// or wss://",
        not_npcbridge: "not an npcbridge server",
        f"ws://127.0.0.1:{closed_port()}/": "cannot connect",
    }
    for url, reason in urls.items():
        async with chatting(base_env(tmp_path), "--npc", "smith", "--url", url) as chat:
            _, err = await asyncio.wait_for(chat.communicate(b""), 60)
        lines = err.decode().strip().splitlines()
        assert chat.returncode == 1, (url, err)
        assert len(lines) == 1 and reason in lines[0] and "Traceback" not in lines[0], (url, err)


async def test_chat_persona_is_defined_from_the_description(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = base_env(tmp_path) | {"GROQ_API_KEY": "k", "NPCBRIDGE_BASE_URL": fake_upstream.base_url}
    async with serving(env) as served:
        args = ("--npc", "smith", "--url", served.url, "--persona", "A gruff blacksmith.")
        async with chatting(env, *args) as chat:
            out, _ = await asyncio.wait_for(chat.communicate(b"[[reply:Aye.]]\n"), 30)
        assert chat.returncode == 0 and "smith> Aye." in out.decode()
    assert served.returncode == 0
    system = " ".join(
        m["content"] for m in fake_upstream.requests[-1].messages if m["role"] == "system"
    )
    assert "You are the gruff blacksmith." in system and "A gruff blacksmith." in system
    assert "You are smith" not in system


async def test_chat_exits_at_once_on_ctrl_c_at_the_prompt(tmp_path: Path) -> None:
    async with (
        serving(base_env(tmp_path)) as served,
        chatting(base_env(tmp_path), "--npc", "blacksmith", "--url", served.url) as chat,
    ):
        assert chat.stdout is not None and chat.stderr is not None
        await read_until(chat.stdout, "you> ")
        # the prompt is written just before the read starts: a signal in between would only be
        # seen after the next line (a window no person at a keyboard hits), so give it time
        await asyncio.sleep(0.5)
        chat.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(chat.wait(), 10) == 0  # no Enter needed
        assert (await chat.stdout.read()).decode() == "\n"
        assert "Traceback" not in (await chat.stderr.read()).decode()
    assert served.returncode == 0


async def test_chat_reconnects_after_the_server_drops(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = base_env(tmp_path) | {"GROQ_API_KEY": "k", "NPCBRIDGE_BASE_URL": fake_upstream.base_url}
    args = ("--npc", "innkeeper", "--persona", "An innkeeper.")
    async with serving(env) as first, chatting(env, *args, "--url", first.url) as chat:
        assert chat.stdin is not None and chat.stdout is not None and chat.stderr is not None
        chat.stdin.write(b"[[reply:One.]]\n")
        await read_until(chat.stdout, "innkeeper> One.")
        assert await first.stop() == 0
        await read_until(chat.stderr, "connection lost; reconnecting")
        port = first.url.rsplit(":", 1)[1].strip("/")
        async with serving(env, "--port", port) as second:
            await read_until(chat.stderr, "[reconnected]")
            chat.stdin.write(b"[[reply:Two.]]\n")
            await read_until(chat.stdout, "innkeeper> Two.")
            chat.stdin.close()
            assert await asyncio.wait_for(chat.wait(), 10) == 0
            assert "Traceback" not in (await chat.stderr.read()).decode()
        assert second.returncode == 0


def test_settle_heap_freezes_start_up_objects_and_spaces_full_collections() -> None:
    """In a process of its own: the collector's settings are the process's."""
    code = (
        "import gc\n"
        "from npcbridge.server import settle_heap\n"
        "young, middle, _ = gc.get_threshold()\n"
        "settle_heap()\n"
        "assert gc.get_freeze_count() > 10000, gc.get_freeze_count()\n"
        "assert gc.get_threshold() == (young, middle, 100), gc.get_threshold()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
