"""The import direction of the package (the contracts in pyproject.toml's [tool.importlinter]):
cli/app -> server -> builtin -> features/memory -> pipeline (run) -> plugin -> gateway ->
providers/stores -> the turn's data types and the catalog -> protocol; nothing but the composition
roots imports npcbridge.app, not even under TYPE_CHECKING; the Python client never imports the
server side; and every module sits in a layer (docs/architecture.md draws it)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_imports_point_one_way() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


#: modules that sit outside the layers on purpose: the package root (version, hook markers), the
#: settings and process helpers every layer may read, the Python client (its own contract) and the
#: test helpers (composition roots for tests)
OUTSIDE_LAYERS = ("npcbridge", "npcbridge.config", "npcbridge.process")
OUTSIDE_LAYER_PACKAGES = ("npcbridge.client", "npcbridge.testing")


def _modules() -> list[str]:
    """Every module of the npcbridge package, by dotted name."""
    names = []
    for path in (ROOT / "npcbridge").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return sorted(names)


def test_every_module_has_a_layer() -> None:
    """A new module cannot slip past the layers contract by not being named in it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = project["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    layer_modules = [m.strip() for layer in layers for m in layer.replace("|", ":").split(":")]

    def covered(name: str) -> bool:
        if name in OUTSIDE_LAYERS:
            return True
        owners = (*layer_modules, *OUTSIDE_LAYER_PACKAGES)
        if any(name == m or name.startswith(m + ".") for m in owners):
            return True
        # a package whose every module is layered (its __init__ only names them)
        return any(m.startswith(name + ".") for m in layer_modules)

    uncovered = [name for name in _modules() if not covered(name)]
    assert not uncovered, f"modules in no layer of [tool.importlinter]: {uncovered}"


def test_feature_packages_re_export_nothing() -> None:
    """One import path per name: a feature's names are imported from the module that defines
    them, not from its package (nor through the gameplay settings module)."""
    import ast

    packages = sorted(
        p.parent.name for p in (ROOT / "npcbridge" / "features").glob("*/__init__.py")
    )
    assert {"barks", "quest", "scenes", "speakers"} <= set(packages)
    for package in packages:
        tree = ast.parse((ROOT / "npcbridge" / "features" / package / "__init__.py").read_text())
        imports = [
            node
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        ]
        assert not imports, f"npcbridge.features.{package} re-exports names"
    settings = ast.parse((ROOT / "npcbridge" / "features" / "settings.py").read_text())
    assigned = [t for node in settings.body if isinstance(node, ast.Assign) for t in node.targets]
    assert "__all__" not in {t.id for t in assigned if isinstance(t, ast.Name)}
