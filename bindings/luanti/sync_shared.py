#!/usr/bin/env python3
"""Copy the Lua client's pure modules the mod shares (router.lua: which request a server message
belongs to; errors.lua: error values; msgpack_types.lua: the one list of the protocol's float
fields) from bindings/lua/npcbridge into the mod.

A Luanti mod cannot ``require`` files outside its folder, so the mod carries copies; this script
is the only way they change: run it after editing those modules of the Lua client.
``tests/test_luanti.py::test_shared_modules_match_the_lua_client`` fails when they differ.

    python bindings/luanti/sync_shared.py          # copy
    python bindings/luanti/sync_shared.py --check  # exit 1 when a copy differs
"""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "bindings" / "lua" / "npcbridge"
TARGET = ROOT / "bindings" / "luanti" / "npcbridge"
SHARED = ("router.lua", "errors.lua", "msgpack_types.lua")


def differing() -> list[str]:
    """The shared files whose copy in the mod is missing or not byte-identical."""
    return [
        name
        for name in SHARED
        if not (TARGET / name).exists()
        or not filecmp.cmp(SOURCE / name, TARGET / name, shallow=False)
    ]


def main(argv: list[str]) -> int:
    """Copy (or with ``--check`` compare) the shared modules; the exit status for the shell."""
    stale = differing()
    if "--check" in argv:
        for name in stale:
            print(f"bindings/luanti/npcbridge/{name} differs from bindings/lua/npcbridge/{name}")
        return 1 if stale else 0
    for name in stale:
        shutil.copyfile(SOURCE / name, TARGET / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
