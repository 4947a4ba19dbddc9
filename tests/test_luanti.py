"""The Luanti mod (bindings/luanti/npcbridge) in a real Luanti server: Debian's minetest-server
5.6 runs headless on a throw-away world with the mod and the test mod ``npcbridge_test``
(tests/luanti/), which talks to a real npcbridge server (the test stack: fake upstream behind it)
through the mod's public API, writes what happened to a file in the world and stops the server.

Needs: apt ``minetest-server`` (brings ``minetest-data``: the game ``minetest_game``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from luanti_world import MOD_DIR, ROOT, TEST_MOD_DIR, free_tcp_port, in_ci, run_luanti
from stack_process import StackProcess, start_stack
from test_memory_processes import serve_env
from test_workers import READY

from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.serving import serving

pytestmark = pytest.mark.luanti
VECTORS = ROOT / "tests" / "vectors"


def need(program: str) -> str:
    """Path of ``program``; skip when it is missing, fail instead under CI."""
    path = shutil.which(program)
    if path is None:
        if in_ci():
            pytest.fail(f"{program} is not installed (CI=true: the Luanti suite must run)")
        pytest.skip(f"{program} is not installed")
    return path


def http_bodies(path: Path) -> Iterator[tuple[str, Any]]:
    """The JSON bodies a client sends in an HTTP vectors file: each case's ``request.json``
    (cases whose body is padded by ``fill``, or sent raw or as msgpack, are left out)."""
    for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
        request = case["request"]
        if "json" in request and "fill" not in request:
            yield case["name"], request["json"]


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    """A real npcbridge server with the fake upstream behind it (logging at info)."""
    with start_stack("--log-level", "info") as running:
        yield running


def upstream_stats(stack: StackProcess) -> dict[str, Any]:
    """The fake upstream's counters (requests, completed, disconnects, active_streams)."""
    with urllib.request.urlopen(f"{stack.control_url.rstrip('/')}/upstream", timeout=10) as r:
        return dict(json.loads(r.read()))


def http_url(stack: StackProcess) -> str:
    """The server's base URL for plain HTTP (the WebSocket port serves both)."""
    return stack.ws_url.replace("ws://", "http://", 1).rstrip("/")


def test_mod_talks_to_a_real_server(tmp_path: Path, stack: StackProcess) -> None:
    """The test mod, through the mod's public API, in a real Luanti server: a streamed reply,
    two NPCs at once, cancel, an unknown NPC, an action, a quest, a voiced reply and memory."""
    log_start = len(stack.stderr)
    upstream_before = upstream_stats(stack)
    run = run_luanti(
        tmp_path,
        [MOD_DIR, TEST_MOD_DIR],
        {
            # only the mod that talks HTTP is trusted; the test mod uses its API
            "secure.http_mods": "npcbridge",
            "npcbridge.url": http_url(stack),
            "npcbridge.poll_wait": "10",
            "npcbridge_test.scenario": "full",
            "npcbridge_test.deadline_s": "60",
        },
    )
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")
    report = f"{json.dumps(result, indent=1)[-3000:]}\n{run.report()}"
    assert result["finished"] == "done", report
    steps = result["steps"]
    assert steps["define"].get("value", {}).get("type") == "ok", report

    stream = steps["stream"]
    assert stream["finish"] == "stop", report
    assert len(stream["text"].split()) == 40, report
    assert len(stream["deltas"]) >= 3, report  # streamed: several deltas, in several polls
    assert "".join(stream["deltas"]) == stream["text"] == stream["so_far"], report

    both = steps["two_at_once"]
    assert both["max_in_flight"] == 2, report
    assert both["blacksmith"]["text"] == "Aye lad, the forge is hot and the steel is ready."
    assert both["guard"]["text"] == "Halt! State your business at the gate, traveller."
    assert both["guard"]["npc"] == "guard" and both["blacksmith"]["npc"] == "blacksmith"
    assert both.get("interleaved", 0) >= 2, report  # deltas arrived while both were running

    cancel = steps["cancel"]
    assert result["cancel_sent"] is True, report
    assert cancel["finish"] == "cancelled", report
    assert 0 < len(cancel["text"].split()) < 200, report
    # the cancel stopped the upstream stream (the fake upstream saw the client go away)
    upstream = upstream_stats(stack)
    assert upstream["disconnects"] > upstream_before["disconnects"], upstream
    assert upstream["active_streams"] == 0, upstream

    assert steps["unknown_npc"]["error"]["code"] == "unknown_npc", report
    not_json = steps["not_json"]
    assert not_json["error"]["code"] == "bad_request" and not_json["after_return"], report
    assert "cannot be sent as JSON" in not_json["error"]["message"], report

    action = steps["action"]
    assert action["actions"] == [{"name": "open_gate", "args": {"gate": "north"}}], report
    assert action["text"] == "Opening the north gate." and action["end_actions"] == 1, report

    quest = steps["quest"]["value"]
    assert quest["title"] == "Rats in the Cellar", report
    assert quest["objectives"] == ["Find the cellar key", "Kill the rats"], report
    assert quest["xp"] == 50 and quest["giver"] == "blacksmith", report

    # /npc as a player: the emote and the reply reach their chat, under the persona's name
    chat = steps["chat_command"]
    assert chat["ok"] is True and not chat.get("timeout"), report
    assert chat["lines"] == ["* Aldric taps his spear", "<Aldric> Move along."], report
    unknown = steps["chat_command_unknown"]["lines"]
    assert len(unknown) == 1 and unknown[0].endswith("(unknown_npc)"), report
    assert unknown[0].startswith("[npcbridge] nobody_here cannot answer: "), report

    # the example NPC: its nametag, and a line typed in its form answered in chat
    entity = steps["entity"]
    assert entity["nametag"] == "Aldric" and not entity.get("timeout"), report
    assert entity["lines"] == ["<Aldric> The gate opens at dawn."], report
    assert "guard" in entity["staticdata"], report

    # a voiced reply over HTTP: its reply.audio frames (base64 PCM) reach on_audio, in order,
    # before on_done; the persona's empty lists went as [] (else the define is refused)
    voiced = steps["voiced"]
    assert voiced.get("finish") == "stop", report
    assert voiced["text"] == "Aye, lad. The road is long.", report
    audio = voiced["audio"]
    assert [a["seq"] for a in audio] == list(range(len(audio))) and audio, report
    assert all(a["format"] == "pcm16" and a["base64_chars"] > 0 for a in audio), report

    assert steps["memory_add"]["value"]["type"] == "ok", report
    items = steps["memory_query"]["value"]
    assert any("hammer" in item["text"] for item in items), report
    assert steps["memory_forget"]["value"]["type"] == "ok", report
    assert not steps["memory_after_forget"]["value"], report  # nothing left ([] reads as null)

    assert not result["general_errors"], report
    assert result["status"] == "ready", report
    log = stack.stderr[log_start:]
    assert "Traceback" not in log, log[-4000:]
    # one HTTP session for the whole run, opened by the mod's hello
    opened = [line for line in log.splitlines() if "http session=" in line and " open" in line]
    assert len(opened) == 1 and "npcbridge-luanti/" in opened[0], log[-4000:]


def test_new_session_after_a_server_restart(tmp_path: Path, stack: StackProcess) -> None:
    """The npcbridge server restarts (its sessions are gone): the mod opens a new session,
    defines its NPC again, and the next line to that NPC is answered."""
    log_start = len(stack.stderr)
    run = run_luanti(
        tmp_path,
        [MOD_DIR, TEST_MOD_DIR],
        {
            "secure.http_mods": "npcbridge,npcbridge_test",
            "npcbridge.url": http_url(stack),
            "npcbridge.poll_wait": "10",
            "npcbridge_test.scenario": "restart",
            "npcbridge_test.control_url": stack.control_url.rstrip("/"),
            "npcbridge_test.deadline_s": "40",
        },
    )
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")
    report = f"{json.dumps(result, indent=1)[-3000:]}\n{run.report()}"
    assert result["finished"] == "done", report
    steps = result["steps"]
    assert steps["before"]["text"] == "Halt.", report
    assert steps["restart"]["code"] == 200, report
    assert steps["after"]["text"] == "Halt again.", report
    assert steps["after"]["npc"] == "guard", report
    assert result["status"] == "ready", report
    # the server's new instance did not know the session (404): a new one, the NPC again
    assert "the npcbridge session expired; opening a new one" in run.log, run.report()
    server_log = stack.stderr[log_start:]
    assert server_log.count("client='luanti/") == 2, server_log[-4000:]


async def test_mod_talks_to_a_server_of_two_workers(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    """``npcbridge serve --workers 2``: the mod's requests of its one session reach either
    worker (Luanti's fetch opens connections as it likes), and every line is answered."""
    config = tmp_path / "npcbridge.toml"
    config.write_text('[npcs.blacksmith]\nname = "Brom"\ndescription = "A blacksmith."\n')
    env = {
        **serve_env(str(tmp_path / "workers.db"), fake_upstream),
        "NPCBRIDGE_CONFIG": str(config),
    }
    async with serving(env, "--workers", "2", "--log-level", "info", ready=READY) as served:
        run = await asyncio.to_thread(
            run_luanti,
            tmp_path,
            [MOD_DIR, TEST_MOD_DIR],
            {
                "secure.http_mods": "npcbridge",
                "npcbridge.url": served.url.replace("ws://", "http://", 1).rstrip("/"),
                "npcbridge.poll_wait": "10",
                "npcbridge_test.scenario": "lines",
                "npcbridge_test.deadline_s": "60",
            },
        )
        log = served.log
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")
    report = f"{json.dumps(result, indent=1)[-3000:]}\n{run.report()}"
    assert result["finished"] == "done", report
    for n in range(1, 9):
        line = result["steps"][f"line{n}"]
        assert (line.get("text"), line.get("finish")) == (f"Line {n}.", "stop"), report
    assert not result["general_errors"] and result["status"] == "ready", report
    assert "expired; opening a new one" not in run.log, run.report()
    # one session for the whole run, and it was never lost
    opened = [line for line in log.splitlines() if "http session=" in line and " open" in line]
    assert len(opened) == 1, log[-4000:]
    assert "Traceback" not in log, log[-4000:]


@pytest.mark.parametrize("token", ["s3cret-token", "wrong-token"])
def test_token_from_minetest_conf(tmp_path: Path, token: str) -> None:
    """npcbridge.token reaches a server that requires one; a wrong one is one clear log line
    and an `unauthorized` error, not a hang."""
    with start_stack("--token", "s3cret-token") as secured:
        run = run_luanti(
            tmp_path,
            [MOD_DIR, TEST_MOD_DIR],
            {
                "secure.http_mods": "npcbridge",
                "npcbridge.url": http_url(secured),
                "npcbridge.token": token,
                "npcbridge_test.scenario": "token",
                "npcbridge_test.deadline_s": "20",
            },
        )
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")
    assert result["finished"] == "done", run.report()
    say = result["steps"]["say"]
    if token == "s3cret-token":
        assert say.get("text") == "Aye.", run.report()
        assert result["status"] == "ready"
    else:
        assert say["error"]["code"] == "unauthorized", run.report()
        assert result["status"] == "refused"
        assert "refused the session: unauthorized" in run.log, run.report()
        assert "check npcbridge.token" in run.log, run.report()
        assert token not in run.log  # the token never reaches a log


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


def test_a_url_without_scheme_is_reported(tmp_path: Path) -> None:
    """npcbridge.url without http://: a clear log line, and a `say` ends with `bad_url`."""
    run = run_luanti(
        tmp_path,
        [MOD_DIR, TEST_MOD_DIR],
        {
            "secure.http_mods": "npcbridge",
            "npcbridge.url": "127.0.0.1:8765",
            "npcbridge_test.scenario": "no_http",
            "npcbridge_test.deadline_s": "10",
        },
    )
    assert run.returncode == 0, run.report()
    result = run.read_json("npcbridge_test.json")
    assert result["steps"]["say"]["error"]["code"] == "bad_url", run.report()
    assert "npcbridge.url must start with http:// or https://" in run.log, run.report()


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
    """Every message vector, read by the mod's JSON decoder and written by its encoder, is the
    same JSON (integers stay integers, protocol floats stay floats, {} stays {}, [] stays [])."""
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
    assert any(name.startswith("http: ") for name, _ in cases)  # the HTTP vectors are read
    for (name, message), out in zip(cases, encoded, strict=True):
        assert out["error"] == "", f"{name}: {out['error']}"
        assert same_json(json.loads(out["json"]), message), f"{name}: {out['json']}"
    # the engine's writer turns an empty table into null (the reason the mod keeps its own;
    # its 7.0 alone the server would read as 7)
    engine = json.loads(run.read_json("npcbridge_test.json")["write_json"])
    assert engine == {"context": None, "id": 7.0}


def test_shared_modules_match_the_lua_client() -> None:
    """The mod's router.lua and errors.lua are the Lua client's, byte for byte."""
    sys.path.insert(0, str(ROOT / "bindings" / "luanti"))
    try:
        import sync_shared
    finally:
        sys.path.pop(0)
    assert sync_shared.differing() == [], "run python bindings/luanti/sync_shared.py"


@pytest.mark.parametrize("interpreter", ["lua5.1", "lua5.4", "luajit"])
def test_pure_parts_under_plain_lua(interpreter: str) -> None:
    """requests.lua (fed the flow vectors) and json.lua under each interpreter, with busted
    (bindings/luanti/spec/): the mod's pure parts are plain Lua, not only LuaJIT."""
    lua, busted = need(interpreter), need("busted")
    env = dict(os.environ, NPCBRIDGE_VECTORS=str(VECTORS))
    result = subprocess.run(
        [busted, f"--lua={lua}", "-o", "TAP"],
        cwd=MOD_DIR.parent, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "not ok" not in result.stdout and "# SKIP" not in result.stdout, output[-4000:]
    assert "ok 1 - " in result.stdout and "late error" in result.stdout, output[-4000:]
