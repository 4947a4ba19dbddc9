"""A throwaway ``redis-server`` for tests: a real binary on a free loopback port, no persistence.

``redis_server_url()`` is a context manager yielding ``redis://127.0.0.1:PORT/0``;
``redis_process()`` yields a :class:`RedisProcess` that can be killed and started again on the
same port (with ``durable=True``, an fsynced append-only file keeps the data across kills). When the
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

from .processes import terminate


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


class RedisProcess:
    """One ``redis-server`` on a fixed free port that a test can kill and start again there.

    ``durable=True`` turns on the append-only file with an fsync per write, so data acknowledged
    before a SIGKILL is there after :meth:`start` (without it a restart comes back empty)."""

    def __init__(self, tmp_dir: str, *, durable: bool = False) -> None:
        self.binary = redis_binary()
        self.dir = tmp_dir
        self.port = free_port()
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.durable
            else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self.dir,
                "--save", "",
                *persistence,
                "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (no shutdown save) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Terminate the server (SIGTERM, SIGKILL after 5 s)."""
        if self.proc is None:
            return
        terminate(self.proc)
        self.proc = None


@contextlib.contextmanager
def redis_process(*, durable: bool = False) -> Iterator[RedisProcess]:
    """A started :class:`RedisProcess` in a temp dir, stopped when the block ends."""
    with tempfile.TemporaryDirectory(prefix="npcbridge-redis-") as tmp:
        server = RedisProcess(tmp, durable=durable)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def redis_server_url(timeout_s: float = 10.0) -> Iterator[str]:
    """Run ``redis-server`` in a temp dir on a free port until the block ends."""
    with tempfile.TemporaryDirectory(prefix="npcbridge-redis-") as tmp:
        server = RedisProcess(tmp)
        server.start(timeout_s)
        try:
            yield server.url
        finally:
            server.stop()


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
