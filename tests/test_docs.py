"""Documentation that cannot drift: every hook has a section, every message an example."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from pathlib import Path

import pytest

from npcbridge.plugin import specs as hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("npcbridge_")
)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_an_example(hook: str) -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    match = re.search(rf"^## {hook}\n(.*?)(?=^## |\Z)", doc, re.M | re.S)
    assert match, f"docs/plugins.md has no '## {hook}' section"
    section = match.group(1)
    assert "```python" in section and f"def {hook}(" in section, f"{hook}: no example"
    assert getattr(hookspecs, hook).__doc__, f"{hook}: no docstring"


def test_no_documented_hook_is_missing_from_hookspecs() -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    assert set(re.findall(r"^## (npcbridge_\w+)$", doc, re.M)) == set(HOOKS)


def _section(hook: str) -> str:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    match = re.search(rf"^## {hook}\n(.*?)(?=^## |\Z)", doc, re.M | re.S)
    assert match, f"docs/plugins.md has no '## {hook}' section"
    return match.group(1)


@pytest.mark.parametrize("hook", HOOKS)
def test_documented_arguments_and_call_mode_match_the_spec(hook: str) -> None:
    """The section's first paragraph states ``hook(args)`` and ``Call mode: `mode```, exactly as
    the spec declares them (the arguments in order, the mode from the one CALL_MODES table)."""
    first = _section(hook).strip().split("\n\n", 1)[0]
    signature = re.search(rf"`{hook}\(([^)]*)\)`", first)
    assert signature, f"{hook}: the first paragraph does not show `{hook}(...)`"
    documented = [a.strip() for a in signature.group(1).split(",") if a.strip()]
    declared = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert documented == declared, f"{hook}: docs say {documented}, the spec {declared}"
    mode = re.search(r"Call\s+mode:\s+`([^`]+)`", first)
    assert mode, f"{hook}: the first paragraph does not state 'Call mode: `...`'"
    assert mode.group(1) == str(hookspecs.CALL_MODES[hook]), hook


def test_every_spec_has_a_call_mode() -> None:
    assert sorted(hookspecs.CALL_MODES) == HOOKS


def test_plugins_doc_names_every_member_of_the_plugin_api_and_the_connection() -> None:
    """What a plugin may use is documented: every public member of PluginAPI and of the
    connection interface handlers get (``session.<member>``)."""
    from npcbridge.features.connection import Connection
    from npcbridge.plugin.api import PluginAPI

    doc = (ROOT / "docs" / "plugins.md").read_text()
    api = [n for n in vars(PluginAPI) if not n.startswith("_")]
    api += [n for n in inspect.signature(PluginAPI).parameters if n not in {"settings", "npcs"}]
    missing = sorted({n for n in api if f"`{n}" not in doc and f"api.{n}" not in doc})
    assert not missing, f"PluginAPI members missing from docs/plugins.md: {missing}"
    members = [n for n in vars(Connection) if not n.startswith("_")]
    members += list(Connection.__annotations__)
    missing = sorted({n for n in members if f"session.{n}" not in doc})
    assert not missing, f"connection members missing from docs/plugins.md: {missing}"
    assert "pip install 'npcbridge[testing]'\n" in doc  # a line of its own, to copy


def _renderer():
    spec = importlib.util.spec_from_file_location(
        "render_protocol_doc", ROOT / "tests" / "vectors" / "render_protocol_doc.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_protocol_doc_shows_every_vector() -> None:
    render = _renderer()
    found = render.examples((ROOT / "docs" / "protocol.md").read_text())
    index = json.loads((ROOT / "tests" / "vectors" / "index.json").read_text())
    kinds = index["messages"] + [v["name"] for v in index["variants"]]
    assert set(found) == set(kinds)
    for kind in kinds:
        assert json.loads(found[kind]) == json.loads(render.twin_json(kind)), kind


#: how a note about the project's own history reads ("the seed's rule", "(issue 3)")
HISTORY_NOTE = re.compile(r"(?i)\bthe\s+seed\b|\bissue\s+#?[0-9]")
#: code and user docs: what ships or is read by users (this file names the pattern itself)
DESCRIBED = ("npcbridge", "docs", "bindings", "plugins", "examples", "README.md", "tests")
SUFFIXES = {".py", ".md", ".lua", ".gd", ".toml", ".rst", ".txt", ".cfg"}


def test_code_and_docs_describe_the_product_not_its_history() -> None:
    files = [
        path
        for top in DESCRIBED
        for path in ([ROOT / top] if (ROOT / top).is_file() else (ROOT / top).rglob("*"))
        if path.is_file()
        and path.suffix in SUFFIXES
        and path != Path(__file__).resolve()
        and not any(part.endswith(".egg-info") or part.startswith(".") for part in path.parts)
    ]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if HISTORY_NOTE.search(line)
    ]
    assert not found, "history notes (say what the code does instead):\n" + "\n".join(found)
