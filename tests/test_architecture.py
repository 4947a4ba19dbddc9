"""The import direction of the package (the contracts in pyproject.toml's [tool.importlinter]):
cli/app -> server -> builtin -> features/memory -> pipeline -> gateway -> plugin API ->
providers/stores -> protocol, and nothing but the composition roots imports npcbridge.app, not
even under TYPE_CHECKING."""

from __future__ import annotations

import subprocess
import sys
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
