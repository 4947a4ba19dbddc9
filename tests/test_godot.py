"""The Godot 4 addon, tested inside a real Godot 4.6 engine (the official web build) in headless
Chromium, against a real npcbridge server with the fake upstream behind it.

How it works (details in ``tests/godot/harness.py`` and ``bindings/godot/README.md``):
``tests/godot/engine.py`` fetches the pinned engine files into ``.cache/godot-web`` (once, with
``npm pack``); ``tests/godot/packs.py`` packs the GDScript test project (``tests/godot/project``),
the addon (``bindings/godot/addons/npcbridge``) and the golden vectors into a PCK; the harness
serves it, runs Chromium and collects one ``NPCB_RESULT`` line per GDScript test. Every GDScript
test becomes one pytest test here.

Locally the suite skips when Chromium or the engine cannot be had; under CI (``CI`` set) it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GODOT_DIR = ROOT / "tests" / "godot"
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from godot import engine, packs  # noqa: E402
from godot.harness import (  # noqa: E402
    DEVTOOLS_PORT_ENV,
    HTTP_PORT_ENV,
    GodotHarness,
    RunResult,
    find_chromium,
    resolve_port,
)
from godot.pck import build_pck, class_cache, read_pck  # noqa: E402
from stack_process import StackProcess, start_stack  # noqa: E402

from tests.chromium import screenshot_path  # noqa: E402

pytestmark = pytest.mark.godot

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
#: The GDScript suite's server requires this token (so the tests cover hello with a token and
#: the unauthorized path).
GD_TOKEN = "gd-test-token"
SCREENSHOT = ROOT / "docs" / "images" / "godot-demo.png"
ADDON = ROOT / "bindings" / "godot" / "addons" / "npcbridge"
DEMO = ROOT / "examples" / "godot-demo"


def _unavailable(reason: str) -> None:
    """Skip locally, fail under CI: CI must really run the engine."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the Godot suite; see bindings/godot/README.md)")
    pytest.skip(reason)


def _gdscript_tests() -> list[str]:
    """``file::test`` for every test_* method in the GDScript test project (collection time)."""
    out = []
    for path in sorted((GODOT_DIR / "project" / "tests").glob("test_*.gd")):
        for name in re.findall(r"^func (test_\w+)\(", path.read_text("utf-8"), re.MULTILINE):
            out.append(f"{path.name}::{name}")
    return out


@pytest.fixture(scope="session")
def harness_parts() -> tuple[Path, str]:
    chromium = find_chromium()
    if chromium is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    try:
        engine_dir = engine.ensure_engine(fetch=True)
    except engine.EngineUnavailable as exc:
        _unavailable(f"Godot 4.6 web engine unavailable: {exc}")
    assert chromium is not None
    return engine_dir, chromium


def _stack_available() -> str | None:
    """None when the test stack can be imported, else the reason it cannot."""
    try:
        import npcbridge.testing.stack  # noqa: F401
    except ImportError as exc:
        return f"npcbridge.testing.stack is not available: {exc}"
    return None


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    reason = _stack_available()
    if reason:
        _unavailable(reason)
    with start_stack() as s:
        yield s


@pytest.fixture(scope="module")
def gdscript_run(harness_parts: tuple[Path, str]) -> Iterator[RunResult]:
    """One engine run of the whole GDScript test project (with a server when one can start;
    the tests that need one report "skipped" otherwise)."""
    engine_dir, chromium = harness_parts
    s = start_stack("--token", GD_TOKEN) if _stack_available() is None else None
    try:
        harness = GodotHarness(engine_dir, chromium, control_url=s.control_url if s else None)
        args = [f"--ws={s.ws_url}", f"--token={GD_TOKEN}"] if s else []
        # with the web audio driver: the voice tests play and record for real
        result = harness.run(packs.test_pack(), args, timeout=300, audio=True)
        print(f"GDScript suite: {result.seconds:.1f} s in the engine")
        yield result
    finally:
        if s:
            s.close()


# --- pure Python: the packer ---------------------------------------------------------------


def test_pck_round_trip_and_layout() -> None:
    files = {"project.godot": b"config_version=5\n", "a/b.gd": b"extends Node\n" * 7, "e": b""}
    blob = build_pck(files)
    assert blob[:4] == b"GDPC"
    assert int.from_bytes(blob[4:8], "little") == 3  # pack format version
    assert int.from_bytes(blob[24:32], "little") == 0x70  # file base after the 112-byte header
    assert read_pck(blob) == files


def test_class_cache_lists_class_names() -> None:
    cache = class_cache(packs.addon_files()).decode()
    for name in ("NPCBridgeMsgPack",):
        assert f'"class": &"{name}"' in cache


# --- the engine ----------------------------------------------------------------------------


def test_harness_reports_failures_errors_and_timeouts(harness_parts: tuple[Path, str]) -> None:
    """The harness must notice a failing check, push_error, a parse error and a hung test."""
    engine_dir, chromium = harness_parts
    project = packs.collect(GODOT_DIR / "project")
    project = {k: v for k, v in project.items() if not k.startswith("tests/")}
    project.update(packs.addon_files())
    project["tests/test_bad.gd"] = (
        b"extends NPCBTestCase\n\n\nfunc test_fails() -> void:\n\tcheck(false, 'deliberate')\n\n\n"
        b"func test_pushes_error() -> void:\n\tpush_error('pushed on purpose')\n\n\n"
        b"func test_hangs() -> void:\n\tset_meta('timeout_s', 1.0)\n\tawait wait_seconds(60)\n"
    )
    project["tests/test_parse_error.gd"] = b"extends NPCBTestCase\nfunc test_x( -> void:\n"
    project[".godot/global_script_class_cache.cfg"] = class_cache(project)
    result = GodotHarness(engine_dir, chromium).run(build_pck(project), timeout=120)
    by_name = {r["test"]: r for r in result.results}
    assert result.exit_code == 1, result.transcript()
    assert by_name["test_fails"]["failures"] == ["deliberate"]
    assert any("timed out" in f for f in by_name["test_hangs"]["failures"])
    assert by_name["<load>"]["file"] == "test_parse_error.gd"
    errors = "\n".join(result.script_errors())
    assert "pushed on purpose" in errors
    assert "Parse Error" in errors or "SCRIPT ERROR" in errors, result.transcript()


def test_harness_port_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ports come from the argument, else the environment variable, else 0 (any free port)."""
    monkeypatch.delenv(HTTP_PORT_ENV, raising=False)
    assert resolve_port(None, HTTP_PORT_ENV) == 0
    monkeypatch.setenv(HTTP_PORT_ENV, "41234")
    assert resolve_port(None, HTTP_PORT_ENV) == 41234
    assert resolve_port(40000, HTTP_PORT_ENV) == 40000
    monkeypatch.setenv(HTTP_PORT_ENV, "http")
    with pytest.raises(ValueError, match=HTTP_PORT_ENV):
        resolve_port(None, HTTP_PORT_ENV)
    monkeypatch.setenv(DEVTOOLS_PORT_ENV, "41235")
    monkeypatch.setenv(HTTP_PORT_ENV, "41236")
    harness = GodotHarness(Path("."), "chromium")
    assert (harness.http_port, harness.devtools_port) == (41236, 41235)


def _free_port() -> int:
    """A port the OS says is free now (the harness then binds it itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_harness_runs_on_fixed_ports(harness_parts: tuple[Path, str]) -> None:
    """Given ports, the page is served on the HTTP port and Chromium's DevTools listen on the
    other, so the suite can run where only some ports are allowed."""
    engine_dir, chromium = harness_parts
    http_port, devtools_port = _free_port(), _free_port()
    project = packs.collect(GODOT_DIR / "project")
    project = {k: v for k, v in project.items() if not k.startswith("tests/")}
    project.update(packs.addon_files())
    project["tests/test_runs.gd"] = (
        b"extends NPCBTestCase\n\n\nfunc test_runs() -> void:\n\tcheck(true, '')\n"
    )
    project[".godot/global_script_class_cache.cfg"] = class_cache(project)
    harness = GodotHarness(engine_dir, chromium, http_port=http_port, devtools_port=devtools_port)
    result = harness.run(build_pck(project), timeout=120)
    assert result.exit_code == 0, result.transcript()
    assert result.results and all(r["ok"] for r in result.results), result.transcript()
    assert result.http_port == http_port
    assert result.devtools_url is not None
    assert f"127.0.0.1:{devtools_port}/" in result.devtools_url, result.devtools_url


@pytest.mark.parametrize("name", _gdscript_tests())
def test_gdscript(gdscript_run: RunResult, name: str) -> None:
    """One GDScript test method, run inside the engine."""
    file, test = name.split("::")
    records = [r for r in gdscript_run.results if r["file"] == file and r["test"] == test]
    assert records, f"{name} did not report (exit {gdscript_run.exit_code}, timed out "
    f"{gdscript_run.timed_out}):\n{gdscript_run.transcript()}"
    record = records[0]
    if record.get("skipped"):
        _unavailable(f"{name}: {record['skipped']}")
    assert record["ok"], f"{name} failed: {record['failures']}\n{gdscript_run.transcript(80)}"


def test_gdscript_run_is_clean(gdscript_run: RunResult) -> None:
    """The run ended by itself with exit code 0 and printed no script errors."""
    assert not gdscript_run.timed_out, gdscript_run.transcript()
    assert gdscript_run.script_errors() == [], gdscript_run.transcript()
    assert gdscript_run.exit_code == 0, gdscript_run.transcript()
    reported = {f"{r['file']}::{r['test']}" for r in gdscript_run.results}
    assert set(_gdscript_tests()) <= reported


# --- style ---------------------------------------------------------------------------------


def _gdtool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        _unavailable(f"{name} (gdtoolkit) is not installed")
    assert found is not None
    return found


GD_SOURCES = [ADDON, GODOT_DIR / "project", DEMO / "main.gd"]


def test_gdlint() -> None:
    targets = [str(p) for p in GD_SOURCES if p.exists()]
    proc = subprocess.run([_gdtool("gdlint"), *targets], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gdformat_check() -> None:
    targets = [str(p) for p in GD_SOURCES if p.exists()]
    proc = subprocess.run(
        [_gdtool("gdformat"), "--check", *targets], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the demo ------------------------------------------------------------------------------


def test_demo_addon_copy_matches_bindings() -> None:
    """examples/godot-demo carries a copy of the addon; it must not drift from bindings/."""
    spec = importlib.util.spec_from_file_location(
        "npcbridge_godot_sync_demo_addon", ROOT / "bindings" / "godot" / "sync_demo_addon.py"
    )
    assert spec is not None and spec.loader is not None
    sync_demo_addon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync_demo_addon)
    assert sync_demo_addon.differences() == [], (
        "examples/godot-demo/addons/npcbridge differs from bindings/godot/addons/npcbridge; "
        "run: python bindings/godot/sync_demo_addon.py"
    )


DEMO_LINE = (
    "Good evening, Brom! Can you fix my sword? [[tps:40]] [[reply:*wipes his hands on his apron* "
    "Aye, lad. Leave it on the anvil and come back at dawn. I'll have it sharp enough to shave "
    "with. And mind the edge next time, steel isn't cheap.]]"
)
DEMO_REPLY = (
    "Aye, lad. Leave it on the anvil and come back at dawn. I'll have it sharp enough to shave "
    "with. And mind the edge next time, steel isn't cheap."
)


def test_demo_scene_scripted_with_screenshot(
    harness_parts: tuple[Path, str], stack: StackProcess, tmp_path: Path
) -> None:
    """The demo scene, driven by one scripted line: the full reply shows in the dialogue box;
    then a gift (a world event) gets Brom's reaction and moves his trust bar; a screenshot goes
    to docs/images/godot-demo.png (shown in bindings/godot/README) with
    ``NPCBRIDGE_UPDATE_SCREENSHOTS=1``, else to the test's temporary folder."""
    engine_dir, chromium = harness_parts
    harness = GodotHarness(engine_dir, chromium, control_url=stack.control_url)
    args = [f"--ws={stack.ws_url}", "--demo-npc=blacksmith", f"--demo-say={DEMO_LINE}"]
    result = harness.run(packs.demo_pack(), args, timeout=120, audio=True)
    assert result.exit_code == 0, result.transcript()
    assert result.script_errors() == [], result.transcript()
    lines = [t for t in result.printed if t.startswith("DEMO_REPLY ")]
    assert lines, result.transcript()
    record = json.loads(lines[0].removeprefix("DEMO_REPLY "))
    assert record["ok"], record
    assert record["npc"] == "blacksmith"
    assert record["text"].strip() == DEMO_REPLY
    assert DEMO_REPLY in record["shown"]
    assert "wipes his hands on his apron" in record["shown"]  # the emote, shown in italics
    assert "[[" not in record["shown"]
    # the gift: a world event the NPC reacts to, and the trust bar on its card moves
    gifts = [t for t in result.printed if t.startswith("DEMO_GIFT ")]
    assert gifts, result.transcript()
    gift = json.loads(gifts[0].removeprefix("DEMO_GIFT "))
    assert gift["ok"] and [r["finish"] for r in gift["reactions"]] == ["stop"], gift
    assert gift["trust_before"] == 10 and gift["trust_after"] == 20, gift
    assert "You give Brom a gift." in gift["shown"]
    # Brom has a voice: the reply came with audio, and it was spoken to its end
    assert record["audio_frames"] >= 2, record
    assert record["speech_finished"] and record["spoken_s"] > 1.0, record
    assert result.screenshot is not None and result.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    screenshot_path(SCREENSHOT, tmp_path).write_bytes(result.screenshot)


def _undocumented(path: Path) -> list[str]:
    """Public signals, enums, constants, variables, functions and inner classes of a script that
    have no ``##`` doc comment on the line(s) above them."""
    lines = path.read_text("utf-8").splitlines()
    out = []
    func_indent: int | None = None
    for n, line in enumerate(lines):
        if not line.strip() or line.strip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip("\t"))
        if func_indent is not None and (indent > func_indent or line.lstrip().startswith(")")):
            continue  # inside a function body (or the end of a wrapped signature)
        func_indent = None
        code = re.sub(r"^(@\w+(\([^)]*\))?\s+)+", "", line.strip()).removeprefix("static ")
        match = re.match(r"(func|signal|var|const|enum|class)\s+(\w+)", code)
        if not match:
            continue
        if match.group(1) == "func":
            func_indent = indent
        if match.group(2).startswith("_"):
            continue
        prev = n - 1
        while prev >= 0 and lines[prev].strip().startswith("@"):
            prev -= 1
        if prev < 0 or not lines[prev].strip().startswith("##"):
            out.append(f"{path.name}:{n + 1}: {match.group(2)}")
    return out


def test_addon_public_members_have_doc_comments() -> None:
    missing = [m for p in sorted(ADDON.glob("*.gd")) for m in _undocumented(p)]
    assert missing == []
