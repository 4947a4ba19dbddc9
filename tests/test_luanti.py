"""The Luanti mod (bindings/luanti/npcbridge) in a real Luanti server: Debian's minetest-server
5.6 runs headless on a throw-away world with the mod and the test mod ``npcbridge_test``
(tests/luanti/), which talks to a real npcbridge server (the test stack: fake upstream behind it)
through the mod's public API, writes what happened to a file in the world and stops the server.

Needs: apt ``minetest-server`` (brings ``minetest-data``: the game ``minetest_game``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from luanti_world import MOD_DIR, TEST_MOD_DIR, free_tcp_port, run_luanti

pytestmark = pytest.mark.luanti


def test_without_http_mods_the_mod_says_so(tmp_path: Path) -> None:
    """Not listed in secure.http_mods: a clear log line, and a `say` ends with on_error."""
    run = run_luanti(
        tmp_path,
        [MOD_DIR, TEST_MOD_DIR],
        {"npcbridge_test.scenario": "no_http", "npcbridge_test.deadline_s": "10"},
    )
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")
    assert result["finished"] == "done", run.report()
    assert result["steps"]["say"]["error"]["code"] == "http_disabled"
    assert result["status"] == "disabled"
    assert "add npcbridge to secure.http_mods in minetest.conf" in run.log, run.report()


def test_unreachable_server_is_reported(tmp_path: Path) -> None:
    """Nothing listens at npcbridge.url: one clear log line, and a `say` ends with on_error."""
    url = f"http://127.0.0.1:{free_tcp_port()}"
    run = run_luanti(
        tmp_path,
        [MOD_DIR, TEST_MOD_DIR],
        {
            "secure.http_mods": "npcbridge",
            "npcbridge.url": url,
            "npcbridge_test.scenario": "unreachable",
            "npcbridge_test.deadline_s": "20",
        },
    )
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")
    assert result["finished"] == "done", run.report()
    assert result["steps"]["say"]["error"]["code"] == "unreachable"
    assert result["status"] == "unreachable"
    assert f"cannot reach the npcbridge server at {url}" in run.log, run.report()
    assert run.log.count("cannot reach the npcbridge server") == 1, run.report()
