"""Write Godot 4 PCK files (pack format version 3) from plain project files.

Layout (all integers little-endian):

- header: ``GDPC``; u32 format version (3); u32 engine major, minor, patch (4, 6, 0);
  u32 flags (2 = file offsets relative to the file base); u64 file base; u64 directory offset;
  16 reserved u32.
- file data from the file base: each file padded to 16 bytes.
- directory: u32 count; per file: u32 path length (NUL-terminated, padded to 4), path bytes
  (without ``res://``), u64 offset (relative to the file base), u64 size, 16-byte MD5, u32 flags 0.

The engine parses ``.gd``/``.tscn``/``.tres``/``project.godot`` text at run time, so no import
step is needed. ``class_name`` lookups need ``.godot/global_script_class_cache.cfg``, which the
editor normally writes; :func:`class_cache` builds it from the scripts' ``class_name`` and
``extends`` lines.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Mapping
from pathlib import Path

MAGIC = b"GDPC"
FORMAT_VERSION = 3
ENGINE_VERSION = (4, 6, 0)
FLAG_REL_FILEBASE = 2
HEADER_SIZE = 4 + 4 * 5 + 8 * 2 + 16 * 4  # 104 bytes, data starts at the next 16-byte boundary
CLASS_CACHE = ".godot/global_script_class_cache.cfg"

_CLASS_RE = re.compile(r"^class_name\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_EXTENDS_RE = re.compile(r"^extends\s+([A-Za-z_][A-Za-z0-9_.]*|\"[^\"]+\")", re.MULTILINE)


def _pad(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def build_pck(files: Mapping[str, bytes]) -> bytes:
    """Return the bytes of a version-3 PCK holding ``files`` ({"res path": bytes})."""
    base = _pad(HEADER_SIZE, 16)
    data = bytearray()
    entries: list[tuple[bytes, int, int, bytes]] = []
    for path in sorted(files):
        content = files[path]
        rel = path.removeprefix("res://").encode("utf-8")
        entries.append((rel, len(data), len(content), hashlib.md5(content).digest()))
        data += content
        data += b"\0" * (_pad(len(data), 16) - len(data))
    directory = bytearray(struct.pack("<I", len(entries)))
    for rel, offset, size, md5 in entries:
        padded = rel + b"\0" * (_pad(len(rel) + 1, 4) - len(rel))
        directory += struct.pack("<I", len(padded)) + padded
        directory += struct.pack("<QQ", offset, size) + md5 + struct.pack("<I", 0)
    header = MAGIC + struct.pack("<IIII", FORMAT_VERSION, *ENGINE_VERSION)
    header += struct.pack("<I", FLAG_REL_FILEBASE) + struct.pack("<QQ", base, base + len(data))
    header += b"\0" * 64
    header += b"\0" * (base - len(header))
    return bytes(header) + bytes(data) + bytes(directory)


def read_pck(blob: bytes) -> dict[str, bytes]:
    """Read a PCK written by :func:`build_pck` back into {path: bytes} (for tests)."""
    if blob[:4] != MAGIC:
        raise ValueError("not a PCK file")
    version, _major, _minor, _patch, flags = struct.unpack_from("<IIIII", blob, 4)
    base, dir_offset = struct.unpack_from("<QQ", blob, 24)
    if version != FORMAT_VERSION or not flags & FLAG_REL_FILEBASE:
        raise ValueError("unsupported PCK")
    (count,) = struct.unpack_from("<I", blob, dir_offset)
    pos = dir_offset + 4
    out: dict[str, bytes] = {}
    for _ in range(count):
        (length,) = struct.unpack_from("<I", blob, pos)
        path = blob[pos + 4 : pos + 4 + length].rstrip(b"\0").decode("utf-8")
        pos += 4 + length
        offset, size = struct.unpack_from("<QQ", blob, pos)
        md5 = blob[pos + 16 : pos + 32]
        pos += 36
        content = blob[base + offset : base + offset + size]
        if hashlib.md5(content).digest() != md5:
            raise ValueError(f"MD5 mismatch for {path}")
        out[path] = content
    return out


def class_cache(files: Mapping[str, bytes]) -> bytes:
    """Build ``global_script_class_cache.cfg`` for every script with a ``class_name``."""
    rows = []
    for path in sorted(files):
        if not path.endswith(".gd"):
            continue
        text = files[path].decode("utf-8")
        match = _CLASS_RE.search(text)
        if not match:
            continue
        ext = _EXTENDS_RE.search(text)
        base = ext.group(1) if ext else "RefCounted"
        is_tool = re.search(r"^@tool\b", text, re.MULTILINE) is not None
        rows.append(
            "{\n"
            f'"base": &"{base}",\n'
            f'"class": &"{match.group(1)}",\n'
            '"icon": "",\n'
            '"is_abstract": false,\n'
            f'"is_tool": {"true" if is_tool else "false"},\n'
            '"language": &"GDScript",\n'
            f'"path": "res://{path.removeprefix("res://")}"\n'
            "}"
        )
    return ("list=[" + ", ".join(rows) + "]\n").encode("utf-8")


def collect(folder: Path, prefix: str = "") -> dict[str, bytes]:
    """Read every file under ``folder`` into {prefix + relative path: bytes} (skips dot-dirs)."""
    out: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            if path.suffix in {".import", ".uid"}:
                continue
            out[prefix + rel.as_posix()] = path.read_bytes()
    return out


def write_project_pck(files: dict[str, bytes], out: Path) -> Path:
    """Add the class cache to ``files`` and write the PCK to ``out``."""
    files = dict(files)
    files[CLASS_CACHE] = class_cache(files)
    out.write_bytes(build_pck(files))
    return out
