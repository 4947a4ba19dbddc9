"""The Lua client (bindings/lua) under real interpreters: lua5.1, lua5.4 and LuaJIT, plus LÖVE.

Each interpreter runs the busted specs in ``bindings/lua/spec/`` unchanged: the pure ones
(msgpack golden vectors, invalid bytes, SHA-1/base64, frames) and the live ones, against

* the test stack (``python -m npcbridge.testing.stack``: a real npcbridge server with the fake
  upstream behind it; its URLs reach the specs as ``NPCBRIDGE_WS_URL`` / ``NPCBRIDGE_CONTROL_URL``),
* a small Python ``websockets`` echo server (``NPCBRIDGE_ECHO_URL``) for the transport specs.

The LÖVE demo (``examples/love-demo``) runs headless in its scripted mode against the same stack.

A missing interpreter, busted or love skips locally and FAILS under CI (``CI=true``).
The rock installs with ``luarocks make --deps-mode=none`` into a temporary tree beside the
distribution's LuaSocket, and lua5.1 requires it from there.

Needs: apt ``lua5.1 lua5.4 luajit lua-socket lua-busted luarocks love`` (``lua-sec`` for wss://).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack_process import start_stack

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "bindings" / "lua"
DEMO_DIR = ROOT / "examples" / "love-demo"
INTERPRETERS = ["lua5.1", "lua5.4", "luajit"]

pytestmark = pytest.mark.lua


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def need(program: str) -> str:
    """Path of ``program``; skip when it is missing, fail instead under CI."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed"
        if in_ci():
            pytest.fail(f"{message} (CI=true: the Lua suite must run)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    """The npcbridge test stack (server + fake upstream) for this module."""
    with start_stack() as running:
        yield running.info


class EchoServer:
    """A Python ``websockets`` echo server in a background thread, on a free loopback port."""

    def __init__(self, ssl_context: Any = None) -> None:
        self.ssl_context = ssl_context
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.server import serve
        from websockets.exceptions import ConnectionClosed

        async def echo(ws: Any) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    await ws.send(message)

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            echo, "127.0.0.1", 0, max_size=2**24, compression=None, ssl=self.ssl_context
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            scheme = "wss" if self.ssl_context is not None else "ws"
            self.url = f"{scheme}://127.0.0.1:{port}/"
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> EchoServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("echo server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls_echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str] | None]:
    """(wss:// URL, CA file) of a TLS echo server with a fresh self-signed certificate, or None
    when there is no ``openssl`` command to make one (wss:// is optional: LuaSec may be absent)."""
    import ssl

    openssl = shutil.which("openssl")
    if openssl is None:
        yield None
        return
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with EchoServer(context) as server:
        yield server.url, str(cert)


@pytest.fixture(scope="module")
def auth_stack() -> Iterator[dict[str, Any]]:
    """A second stack whose server requires a token."""
    with start_stack("--token", "s3cret-token") as running:
        yield running.info


def run(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"{' '.join(cmd)} timed out after {timeout} s\n{out[-4000:]}")


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_busted_specs(
    interpreter: str,
    stack: dict[str, Any],
    auth_stack: dict[str, Any],
    echo_server: EchoServer,
    tls_echo_server: tuple[str, str] | None,
) -> None:
    """All busted specs pass on this interpreter (pure + live server + echo server)."""
    need(interpreter)
    busted = need("busted")
    env = dict(os.environ)
    env.update(
        NPCBRIDGE_WS_URL=stack["ws_url"],
        NPCBRIDGE_CONTROL_URL=stack["control_url"],
        NPCBRIDGE_UPSTREAM_URL=stack["upstream_url"],
        NPCBRIDGE_ECHO_URL=echo_server.url,
        NPCBRIDGE_AUTH_WS_URL=auth_stack["ws_url"],
        NPCBRIDGE_AUTH_TOKEN=auth_stack["token"],
        NPCBRIDGE_VECTORS=str(ROOT / "tests" / "vectors"),
    )
    if tls_echo_server is not None:
        env["NPCBRIDGE_WSS_URL"], env["NPCBRIDGE_WSS_CAFILE"] = tls_echo_server
    started = time.monotonic()
    result = run([busted, f"--lua={interpreter}", "-o", "TAP"], env, LUA_DIR, timeout=600)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        # the failing specs first (TAP: "not ok" and its "#" lines), then the end of the output
        failing, keep = [], False
        for line in result.stdout.splitlines():
            keep = line.startswith("not ok") or (keep and line.startswith("#"))
            if keep:
                failing.append(line)
        report = "\n".join(failing)
        pytest.fail(f"busted on {interpreter} failed:\n{report}\n---\n{output[-4000:]}")
    # the run really happened on this interpreter and ran the live specs
    assert "not ok" not in result.stdout
    skipped = [line for line in result.stdout.splitlines() if "# SKIP" in line]
    # only wss:// may be skipped (no openssl to make a certificate, or LuaSec not installed)
    assert all("wss" in line for line in skipped), f"specs were skipped: {skipped}"
    assert "reconnects after a server restart" in result.stdout
    assert time.monotonic() - started < 600


def test_love_demo_scripted(stack: dict[str, Any]) -> None:
    """The LÖVE demo, headless and scripted: a line to each NPC, streamed replies, then a gift
    that moves Brom's trust; exit 0."""
    love = need("love")
    env = dict(os.environ)
    env.update(
        NPCBRIDGE_WS_URL=stack["ws_url"],
        NPCBRIDGE_DEMO_SCRIPTED="1",
        NPCBRIDGE_DEMO_TIMEOUT="30",
        NPCBRIDGE_DEMO_LINE="Fix my sword? [[reply:Aye lad, leave it on the anvil.]]",
    )
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    result = run([love, str(DEMO_DIR), "--scripted"], env, ROOT, timeout=90)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"love exited {result.returncode}:\n{output[-4000:]}"
    assert "Brom" in result.stdout and "Aye lad, leave it on the anvil." in result.stdout
    assert "Aelindra" in result.stdout
    # a gift (a world event) gets Brom's reaction and raises his trust (the bar under his tab)
    assert "gift to Brom: 1 reaction(s), trust 10 -> 20" in result.stdout, result.stdout
    assert result.stdout.strip().endswith("OK")


def test_love_demo_fails_without_server() -> None:
    """Scripted mode exits nonzero when no reply can come (here: nothing listens)."""
    love = need("love")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    env.update(
        NPCBRIDGE_WS_URL=f"ws://127.0.0.1:{port}/",
        NPCBRIDGE_DEMO_SCRIPTED="1",
        NPCBRIDGE_DEMO_TIMEOUT="2",
    )
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    result = run([love, str(DEMO_DIR)], env, ROOT, timeout=60)
    assert result.returncode != 0
    assert "TIMEOUT" in result.stdout


def readme_love_example() -> str:
    """The Lua block under "LÖVE in 20 lines" in bindings/lua/README.md."""
    text = (LUA_DIR / "README.md").read_text(encoding="utf-8")
    section = text.split("## LÖVE in 20 lines", 1)[1]
    return section.split("```lua\n", 1)[1].split("```", 1)[0]


# Appended to the README example (same chunk: it sees `client`, `typed`, `reply`): types a line
# once connected, waits for the streamed reply, prints it and quits.
_README_HARNESS = """
local example_update, sent, t0 = love.update, false, os.time()
function love.update(dt)
  example_update(dt)
  if not sent and client:is_ready() then
    love.textinput("Hello? [[reply:Aye lad, what do you need?]]")
    love.keypressed("return")
    sent = true
  end
  if reply == "Aye lad, what do you need?" then print("REPLY " .. reply); love.event.quit(0) end
  if os.time() - t0 > 20 then print("TIMEOUT " .. reply); love.event.quit(3) end
end
"""

_HEADLESS_CONF = """
function love.conf(t)
  t.window = false
  t.modules.window, t.modules.graphics, t.modules.audio = false, false, false
  t.modules.sound, t.modules.joystick, t.modules.video = false, false, false
end
"""


def test_readme_love_example(stack: dict[str, Any], tmp_path: Path) -> None:
    """The README's 20-line LÖVE example works as written, with the folder dropped in a game."""
    love = need("love")
    example = readme_love_example()
    assert len(example.splitlines()) <= 20
    game = tmp_path / "game"
    shutil.copytree(LUA_DIR / "npcbridge", game / "npcbridge")
    example = example.replace("ws://127.0.0.1:8765/", stack["ws_url"])
    (game / "main.lua").write_text(example + _README_HARNESS, encoding="utf-8")
    (game / "conf.lua").write_text(_HEADLESS_CONF, encoding="utf-8")
    env = dict(os.environ)
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    result = run([love, str(game)], env, tmp_path, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"love exited {result.returncode}:\n{output[-4000:]}"
    assert "REPLY Aye lad, what do you need?" in result.stdout


def test_rock_installs_beside_distribution_luasocket(tmp_path: Path) -> None:
    """``luarocks make --deps-mode=none --tree=<dir>`` installs the rock where LuaSocket comes from
    the distribution (no rock of it), and lua5.1 then requires every module from that tree."""
    lua = need("lua5.1")
    luarocks = need("luarocks")
    rockspec = next(LUA_DIR.glob("npcbridge-*.rockspec"))
    # every module file is listed in the rockspec (a module missing there breaks the rock only)
    listed = set(rockspec.read_text(encoding="utf-8").split("build = {", 1)[1].split('"'))
    for path in sorted((LUA_DIR / "npcbridge").glob("*.lua")):
        assert f"npcbridge/{path.name}" in listed, f"{path.name} is not in {rockspec.name}"
    tree = tmp_path / "tree"
    env = dict(os.environ, HOME=str(tmp_path))  # no user config or user tree
    cmd = [
        luarocks,
        "--lua-version=5.1",
        "make",
        "--deps-mode=none",
        f"--tree={tree}",
        rockspec.name,
    ]
    result = run(cmd, env, LUA_DIR, timeout=120)
    assert result.returncode == 0, f"luarocks make failed:\n{result.stdout}\n{result.stderr}"
    paths = run(
        [luarocks, "--lua-version=5.1", "path", f"--tree={tree}"], env, tmp_path, timeout=60
    )
    assert paths.returncode == 0, paths.stderr
    for line in paths.stdout.splitlines():  # export LUA_PATH='...'
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip("'\"")
    modules = [f"npcbridge.{p.stem}" for p in sorted((LUA_DIR / "npcbridge").glob("*.lua"))]
    names = ", ".join(repr(m) for m in modules if m != "npcbridge.init")
    script = (
        'local n = require("npcbridge")\n'
        f"for _, m in ipairs({{{names}}}) do\n"
        "  require(m)\nend\n"
        'assert(package.loaded["npcbridge"] == n)\n'
        'print("from " .. debug.getinfo(n.new, "S").source:sub(2))\n'
    )
    loaded = run([lua, "-e", script], env, tmp_path, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith(f"from {tree}"), loaded.stdout
