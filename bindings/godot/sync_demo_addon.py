#!/usr/bin/env python3
"""Copy the addon (bindings/godot/addons/npcbridge) into examples/godot-demo/addons/npcbridge.

The demo carries its own copy so that it opens in the Godot editor straight after a clone (on
every OS; no symlinks). This script is the only way that copy changes: run it after editing the
addon. ``tests/test_godot.py::test_demo_addon_copy_matches_bindings`` fails when they differ.

    python bindings/godot/sync_demo_addon.py          # copy
    python bindings/godot/sync_demo_addon.py --check  # exit 1 when the copy differs
"""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "bindings" / "godot" / "addons" / "npcbridge"
TARGET = ROOT / "examples" / "godot-demo" / "addons" / "npcbridge"


def _files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix not in {".import", ".uid"}
    }


def differences() -> list[str]:
    """Relative paths that differ between the addon and the demo's copy (empty: in sync)."""
    if not TARGET.exists():
        return ["<the demo has no addons/npcbridge>"]
    src, dst = _files(SOURCE), _files(TARGET)
    out = sorted(src ^ dst)
    out += sorted(p for p in src & dst if not filecmp.cmp(SOURCE / p, TARGET / p, shallow=False))
    return out


def sync() -> None:
    """Make the demo's copy identical to the addon (editor-made .import/.uid files are kept)."""
    for rel in _files(TARGET) - _files(SOURCE) if TARGET.exists() else ():
        (TARGET / rel).unlink()
    for rel in _files(SOURCE):
        (TARGET / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCE / rel, TARGET / rel)


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        diff = differences()
        for rel in diff:
            print(f"differs: {rel}")
        sys.exit(1 if diff else 0)
    sync()
    print(f"synced {SOURCE.relative_to(ROOT)} -> {TARGET.relative_to(ROOT)}")
