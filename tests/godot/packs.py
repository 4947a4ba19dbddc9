"""The PCKs the Godot suite runs: the GDScript test project and the demo.

The test project takes the addon from ``bindings/godot/addons/npcbridge`` (the one source of
truth) and the golden vectors from ``tests/vectors`` (under ``res://vectors/``). The demo is
packed as it is, with its synced copy of the addon.
"""

from __future__ import annotations

from pathlib import Path

from .pck import build_pck, class_cache, collect

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "bindings" / "godot" / "addons" / "npcbridge"
VECTORS = ROOT / "tests" / "vectors"
TEST_PROJECT = Path(__file__).resolve().parent / "project"
DEMO = ROOT / "examples" / "godot-demo"


def _finish(files: dict[str, bytes]) -> bytes:
    files[".godot/global_script_class_cache.cfg"] = class_cache(files)
    return build_pck(files)


def addon_files() -> dict[str, bytes]:
    """The addon's files as they sit in a project (``addons/npcbridge/...``)."""
    return collect(ADDON, "addons/npcbridge/")


def test_pack() -> bytes:
    """The GDScript test project + the addon + the golden vectors."""
    files = collect(TEST_PROJECT)
    files.update(addon_files())
    files.update(
        {
            f"vectors/{p.name}": p.read_bytes()
            for p in sorted(VECTORS.iterdir())
            if p.suffix in {".json", ".msgpack"}
        }
    )
    return _finish(files)


def demo_pack() -> bytes:
    """The demo project as it is in the repository, with its own copy of the addon (which
    ``bindings/godot/sync_demo_addon.py`` keeps identical to bindings/, checked by a test)."""
    return _finish(collect(DEMO))
