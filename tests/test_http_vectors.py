"""``tests/vectors/http.json`` replayed against a real server (token ``s3cret``, the fake upstream
behind it): every request gets the status, headers and body the vector lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack

from npcbridge.testing.bridge import start_bridge
from npcbridge.testing.fake_upstream import FakeUpstream
from tests.http_helpers import EventStream, request

VECTORS = json.loads((Path(__file__).parent / "vectors" / "http.json").read_text())


def matches(expected: Any, actual: Any, where: str = "body") -> None:
    """``actual`` equals ``expected``, where the string ``"*"`` in ``expected`` matches anything."""
    if expected == VECTORS["any"]:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (where, actual)
        for key, value in expected.items():
            matches(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (where, actual)
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            matches(want, got, f"{where}[{index}]")
    else:
        assert actual == expected and type(actual) is type(expected), (where, actual)


def body_of(sent: dict[str, Any]) -> bytes:
    if "msgpack_hex" in sent:
        return bytes.fromhex(sent["msgpack_hex"])
    if "raw" in sent:
        return str(sent["raw"]).encode()
    if "json" not in sent:
        return b""
    value = dict(sent["json"])
    fill = sent.get("fill")
    if fill:
        value[fill["field"]] = fill["char"] * fill["count"]
    return json.dumps(value).encode()


async def test_the_http_vectors_hold(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    token = VECTORS["server"]["token"]
    async with await start_bridge(fake_upstream, tmp_path, server__token=token) as bridge:
        port = bridge.server.port
        keys: dict[str, str] = {}
        for case in VECTORS["cases"]:
            sent, want = case["request"], case["answer"]
            path = sent["path"].format(**keys)
            if "events" in want:
                stream = await EventStream.open(port, path, sent["headers"])
                try:
                    assert stream.status == want["status"], case["name"]
                    # the stream opens with a comment line, then the events
                    text = await stream.read_text(len(want["events"].encode()))
                    assert text.split("\n\n", 1)[1] == want["events"], case["name"]
                finally:
                    stream.close()
            else:
                answer = await request(port, sent["method"], path, body_of(sent), sent["headers"])
                assert answer.status == want["status"], (case["name"], answer.body)
                if "msgpack_hex" in want:
                    assert answer.body.hex() == want["msgpack_hex"], case["name"]
                    assert msgpack.unpackb(answer.body)
                else:
                    matches(want["json"], answer.json(), case["name"])
                if case["name"] in ("open", "open-bearer"):
                    keys["session" if case["name"] == "open" else "other"] = answer.json()[
                        "session"
                    ]
                stream = None
            for name, value in want["headers"].items():
                headers = answer.headers if stream is None else stream.headers
                assert headers[name] == value, (case["name"], name)
        assert not bridge.server.http_transport.sessions
