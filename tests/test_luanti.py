"""The Luanti mod (bindings/luanti/npcbridge) in a real Luanti server: Debian's minetest-server
5.6 runs headless on a throw-away world with the mod and the test mod ``npcbridge_test``
(tests/luanti/), which talks to a real npcbridge server (the test stack: fake upstream behind it)
through the mod's public API, writes what happened to a file in the world and stops the server.

Needs: apt ``minetest-server`` (brings ``minetest-data``: the game ``minetest_game``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from luanti_world import MOD_DIR, ROOT, TEST_MOD_DIR, free_tcp_port, run_luanti

pytestmark = pytest.mark.luanti
VECTORS = ROOT / "tests" / "vectors"


def http_bodies(path: Path) -> Iterator[tuple[str, Any]]:
    """The JSON bodies a client sends in an HTTP vectors file (its requests' ``body`` maps)."""
    yield from ()


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


def same_json(a: Any, b: Any) -> bool:
    """Equal JSON values where an integer and a float are different (``80`` is not ``80.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def message_vectors() -> list[tuple[str, Any]]:
    """(name, message) of every message vector, and the HTTP transport's JSON bodies when there
    are HTTP vectors (tests/vectors/http*.json)."""
    index = json.loads((VECTORS / "index.json").read_text(encoding="utf-8"))
    names = list(index["messages"]) + [v["name"] for v in index["variants"]]
    cases = [(n, json.loads((VECTORS / f"{n}.json").read_text(encoding="utf-8"))) for n in names]
    for path in sorted(VECTORS.glob("http*.json")):
        cases += [(f"{path.stem}: {name}", body) for name, body in http_bodies(path)]
    return cases


def test_mod_writes_the_vectors_json(tmp_path: Path) -> None:
    """Every message vector, read by the engine's JSON parser and written by the mod's encoder,
    is the same JSON (integers stay integers, protocol floats stay floats, {} stays {})."""
    cases = message_vectors()
    world = tmp_path / "world"
    world.mkdir()
    payload = [{"name": name, "json": json.dumps(message)} for name, message in cases]
    (world / "npcbridge_vectors.json").write_text(json.dumps(payload), encoding="utf-8")
    run = run_luanti(
        tmp_path,
        [MOD_DIR, TEST_MOD_DIR],
        {"npcbridge_test.scenario": "encode", "npcbridge_test.deadline_s": "20"},
    )
    assert run.returncode == 0, run.report()
    encoded = run.read_json("npcbridge_test.json")["encoded"]
    assert [e["name"] for e in encoded] == [name for name, _ in cases]
    for (name, message), out in zip(cases, encoded, strict=True):
        assert out["error"] == "", f"{name}: {out['error']}"
        assert same_json(json.loads(out["json"]), message), f"{name}: {out['json']}"


def test_shared_modules_match_the_lua_client() -> None:
    """The mod's router.lua and errors.lua are the Lua client's, byte for byte."""
    sys.path.insert(0, str(ROOT / "bindings" / "luanti"))
    try:
        import sync_shared
    finally:
        sys.path.pop(0)
    assert sync_shared.differing() == [], "run python bindings/luanti/sync_shared.py"
