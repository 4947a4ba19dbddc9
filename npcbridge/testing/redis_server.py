"""A throwaway ``redis-server`` for tests: a real binary on a free loopback port, no persistence.

``redis_server_url()`` is a context manager yielding ``redis://127.0.0.1:PORT/0``. When the
binary is missing the test is skipped, except under ``CI=true`` where it fails: CI must install
``redis-server`` (apt) so the shared-store suite really runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str:
    """Path of ``redis-server``; skips the test (fails under CI=true) when it is absent."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


@contextlib.contextmanager
def redis_server_url(timeout_s: float = 10.0) -> Iterator[str]:
    """Run ``redis-server`` in a temp dir on a free port until the block ends."""
    binary = redis_binary()
    with tempfile.TemporaryDirectory(prefix="npcbridge-redis-") as tmp:
        port = free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", tmp,
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def flush(url: str) -> None:
    """Empty the database behind ``url`` (between tests)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_session_url() -> Iterator[str]:
    """One ``redis-server`` for the whole test session."""
    with redis_server_url() as url:
        yield url


@pytest.fixture
def redis_url(redis_session_url: str) -> str:
    """The session's Redis, emptied for this test. Import this fixture into a test module."""
    flush(redis_session_url)
    return redis_session_url
