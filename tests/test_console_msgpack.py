"""The console page's msgpack encoder/decoder (npcbridge/console/static/msgpack.js) against the
shared wire vectors, run by Node.js: every codec case decodes to its value and re-encodes to its
canonical bytes, invalid bytes are refused, and the page's own messages (hello, say,
npc.define, memory.*, cancel, ping) encode to the canonical bytes of tests/vectors.

Locally the test skips without ``node``; under CI (``CI`` set) it fails instead (scripts/test
installs Node.js).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MSGPACK_JS = ROOT / "npcbridge" / "console" / "static" / "msgpack.js"
VECTORS = ROOT / "tests" / "vectors"

#: the client messages the console page sends
PAGE_SENDS = ("hello", "say", "npc.define", "memory.query", "memory.forget", "memory.add")

RUNNER = ROOT / "tests" / "console_vectors.mjs"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed (scripts/test installs nodejs)")
        pytest.skip("node is not installed")
    return node


def test_the_page_codec_speaks_the_vectors() -> None:
    node = node_or_skip()
    done = subprocess.run(
        [node, str(RUNNER), MSGPACK_JS.as_uri(), str(VECTORS), ",".join(PAGE_SENDS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failures"] == []
    assert result["messages"] == len(PAGE_SENDS)
