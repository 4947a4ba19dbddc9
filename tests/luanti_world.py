"""A real Luanti (Minetest) server, headless, on a throw-away world, for the Luanti mod's tests::

    run = run_luanti(tmp_path, mods=[MOD_DIR, TEST_MOD_DIR], settings={"npcbridge.url": url})
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")

The mods are copied into ``<world>/worldmods/``; the server binds 127.0.0.1 on a free UDP port,
writes its log to a file in the world folder, and must stop by itself (the test mod calls
``minetest.request_shutdown``) within ``timeout_s``, else it is killed and the test fails with
the log's tail. Debian's ``minetest-server`` (5.6) with the bundled game ``minetest_game``
(package ``minetest-data``) is what CI installs; missing, it skips locally and fails under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MOD_DIR = ROOT / "bindings" / "luanti" / "npcbridge"
TEST_MOD_DIR = ROOT / "tests" / "luanti" / "npcbridge_test"
GAMES = Path("/usr/share/games/minetest/games")


def in_ci() -> bool:
    """True under CI (``CI=true``): a missing Luanti server then fails instead of skipping."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def luanti_server() -> str:
    """Path of ``minetestserver`` (with the game ``minetest_game`` installed); skip when either
    is missing, fail instead under CI."""
    path = shutil.which("minetestserver") or shutil.which("/usr/games/minetestserver")
    problem = None
    if path is None:
        problem = "minetestserver is not installed (apt minetest-server)"
    elif not (GAMES / "minetest_game").is_dir():
        problem = "the game minetest_game is not installed (apt minetest-data)"
    if problem:
        if in_ci():
            pytest.fail(f"{problem} (CI=true: the Luanti suite must run)")
        pytest.skip(problem)
    assert path is not None
    return path


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing uses right now (Luanti listens on UDP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (for an unreachable server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LuantiRun:
    """A finished server run: exit status, the world folder and the server's log."""

    returncode: int | None
    world: Path
    log: str
    timed_out: bool

    def read_json(self, name: str) -> Any:
        """A JSON file the mods wrote into the world folder (fails with the log when absent)."""
        path = self.world / name
        if not path.exists():
            pytest.fail(f"the world has no {name}\n{self.report()}")
        return json.loads(path.read_text(encoding="utf-8"))

    def report(self) -> str:
        """The end of the server's log, for a failing assertion."""
        state = "killed after the timeout" if self.timed_out else f"exit {self.returncode}"
        return f"minetestserver: {state}; its log ends with:\n{self.log[-6000:]}"


def run_luanti(
    tmp_path: Path,
    mods: list[Path],
    settings: dict[str, str],
    *,
    timeout_s: float = 90,
) -> LuantiRun:
    """Run a Luanti server on a new world under ``tmp_path`` with ``mods`` and the config
    ``settings`` (added to the loopback bind and port) until it stops by itself."""
    server = luanti_server()
    world = tmp_path / "world"
    for mod in mods:
        shutil.copytree(mod, world / "worldmods" / mod.name)
    (world / "world.mt").write_text("gameid = minetest\nbackend = sqlite3\n", encoding="utf-8")
    config = {
        "bind_address": "127.0.0.1",
        "port": str(free_udp_port()),
        "server_announce": "false",
        "ipv6_server": "false",
        "enable_rollback_recording": "false",
        "debug_log_level": "action",
        **settings,
    }
    conf = tmp_path / "minetest.conf"
    conf.write_text("".join(f"{k} = {v}\n" for k, v in config.items()), encoding="utf-8")
    logfile = world / "debug.txt"
    home = tmp_path / "home"
    home.mkdir()
    cmd = [server, "--world", str(world), "--gameid", "minetest", "--config", str(conf),
           "--logfile", str(logfile)]  # fmt: skip
    env = dict(os.environ, HOME=str(home))
    timed_out = False
    with subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace",
    ) as proc:  # fmt: skip
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            output, _ = proc.communicate()
    log = logfile.read_text(encoding="utf-8", errors="replace") if logfile.exists() else ""
    return LuantiRun(proc.returncode, world, log or output, timed_out)
