"""Refresh the examples in docs/protocol.md from the vectors' JSON twins.

Each message kind (and each variant, such as ``error-refused``) has a ``### `name``` heading
followed by a ```` ```json ```` block; this script
rewrites those blocks in place (run it after ``make_vectors.py``). ``tests/test_docs.py`` fails
when an example differs from its vector or a kind has no example.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent.parent / "docs" / "protocol.md"
EXAMPLE = re.compile(r"^### `([a-z.-]+)`\n\n```json\n(.*?)\n```", re.M | re.S)


def twin_json(kind: str) -> str:
    """The vector's JSON twin as it appears in the doc."""
    twin = json.loads((HERE / f"{kind}.json").read_text(encoding="utf-8"))
    return json.dumps(twin, indent=2, ensure_ascii=False)


def examples(text: str) -> dict[str, str]:
    """{kind: example JSON text} as found in the doc."""
    return {m.group(1): m.group(2) for m in EXAMPLE.finditer(text)}


def refresh(text: str) -> str:
    """Replace every example block with its vector's twin."""
    return EXAMPLE.sub(
        lambda m: f"### `{m.group(1)}`\n\n```json\n{twin_json(m.group(1))}\n```", text
    )


if __name__ == "__main__":
    DOC.write_text(refresh(DOC.read_text(encoding="utf-8")), encoding="utf-8")
