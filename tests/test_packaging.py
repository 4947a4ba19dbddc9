"""The wheel's optional parts install with what they import.

``npcbridge.testing`` ships in the wheel; whatever it imports must come from the core dependencies
or the ``testing`` extra, so ``pip install 'npcbridge[testing]'`` is enough to use it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirement_names(requirements: list[str]) -> set[str]:
    """Normalised distribution names of PEP 508 requirement strings."""
    names = set()
    for requirement in requirements:
        match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
        assert match, requirement
        names.add(match.group(0).lower().replace("_", "-"))
    return names


def _optional_imports(tree: ast.AST) -> set[int]:
    """Ids of import nodes inside ``try`` blocks that handle ImportError (optional speed-ups)."""
    optional: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        handled = {getattr(handler.type, "id", None) for handler in node.handlers if handler.type}
        if handled & {"ImportError", "ModuleNotFoundError"}:
            optional.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return optional


def _third_party_imports(folder: Path) -> set[str]:
    """Top-level module names imported by the modules in ``folder`` that are not stdlib or ours
    (imports guarded by ``except ImportError`` are optional and left out)."""
    modules: set[str] = set()
    for path in folder.glob("**/*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        optional = _optional_imports(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "npcbridge"}


def test_testing_package_needs_only_core_and_testing_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    allowed = _requirement_names(project["dependencies"])
    allowed |= _requirement_names(project["optional-dependencies"]["testing"])
    distributions = packages_distributions()
    imported = _third_party_imports(ROOT / "npcbridge" / "testing")
    assert imported, "npcbridge.testing imports no third-party module: the check would be empty"
    missing = {
        module: distributions.get(module, [module])
        for module in imported
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [module])} & allowed
    }
    assert not missing, f"npcbridge.testing imports modules outside core + [testing]: {missing}"
