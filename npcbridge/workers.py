"""``npcbridge serve --workers N``: N server processes on one port, under a supervisor.

The supervisor (this module, no event loop) binds the configured address with ``SO_REUSEPORT``
without listening on it, which reserves the port (and resolves ``--port 0``); then it starts N
copies of the same ``npcbridge serve`` command line as worker processes. Each worker is a whole
server: it loads the configuration and plugins, opens the store, and listens on that port with
``SO_REUSEPORT`` too, so the kernel spreads new connections over the workers (a connection stays
with the worker that accepted it). A bound socket that does not listen takes no connections.

The workers share the store (a SQLite file in WAL mode, or Redis): with more than one worker
the store counts as shared, so budgets, the upstream rate-limit windows and summary leases hold
for all workers together (``docs/deployment.md`` lists what is per worker).

The supervisor waits until every worker listens, logs one line, and then:

* SIGTERM or SIGINT: passed on to every worker (each finishes like a single server does), then
  the supervisor exits 0 once they have;
* a worker that exits on its own after start-up is started again one second later (logged);
* a worker that fails during start-up (bad config, store unreachable) stops them all: the
  supervisor exits with that worker's status (its error line is on stderr already).

Workers are told who they are through the environment: ``NPCBRIDGE_WORKER_INDEX`` (0..N-1),
``NPCBRIDGE_WORKER_PORT`` (the port to listen on), ``NPCBRIDGE_WORKER_DIR`` (a folder the
workers share: their ``/metrics`` snapshots, and where each takes the HTTP transport requests
forwarded to it, ``npcbridge.server.http_forward``) and ``NPCBRIDGE_WORKER_READY_FD`` (a pipe they
write one byte to once they listen). On Linux a worker also ends when the supervisor dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server.http_forward import WorkerPlace

log = logging.getLogger("npcbridge.workers")

INDEX_ENV = "NPCBRIDGE_WORKER_INDEX"
PORT_ENV = "NPCBRIDGE_WORKER_PORT"
DIR_ENV = "NPCBRIDGE_WORKER_DIR"
READY_FD_ENV = "NPCBRIDGE_WORKER_READY_FD"

#: how long a worker may take to listen, and to stop after SIGTERM
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
RESTART_DELAY_S = 1.0


def worker_index() -> int | None:
    """This process's worker index, or None when it is not a worker."""
    value = os.environ.get(INDEX_ENV)
    return int(value) if value is not None else None


def worker_port() -> int | None:
    """The port a worker listens on (the supervisor's), or None when not a worker."""
    value = os.environ.get(PORT_ENV)
    return int(value) if value is not None else None


def shared_folder() -> Path | None:
    """The folder the workers share (``/metrics`` snapshots, forwarding listings), or None when
    not a worker."""
    value = os.environ.get(DIR_ENV)
    return Path(value) if value is not None else None


def worker_place() -> WorkerPlace | None:
    """This worker among the server's workers (``serve(worker=...)``), or None when not a
    worker."""
    # imported here: the supervisor and the other commands never load the server
    from .server.http_forward import WorkerPlace

    folder, index = shared_folder(), worker_index()
    return WorkerPlace(folder, index) if folder is not None and index is not None else None


def announce_ready() -> None:
    """Tell the supervisor this worker listens (nothing when this is no worker)."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(int(fd), b"1")
        os.close(int(fd))


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with ``SO_REUSEPORT``, not listening (holds the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the supervisor dies (Linux ``PR_SET_PDEATHSIG``)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


class Supervisor:
    """Starts, watches and stops the worker processes of one ``npcbridge serve --workers N``."""

    def __init__(self, workers: int, host: str, port: int, command: Sequence[str]) -> None:
        """``command``: what follows the Python interpreter in each worker's command line
        (``-m npcbridge.cli serve ...``, the supervisor's own arguments)."""
        self.count = workers
        self.host = host
        self.command = list(command)
        self.sock = reserve_port(host, port)
        self.port = int(self.sock.getsockname()[1])
        self._folder = tempfile.TemporaryDirectory(prefix="npcbridge-workers-")
        self.folder = Path(self._folder.name)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _spawn(self, index: int, ready_fd: int | None) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            INDEX_ENV: str(index),
            PORT_ENV: str(self.port),
            DIR_ENV: str(self.folder),
        }
        fds: tuple[int, ...] = ()
        if ready_fd is not None:
            env[READY_FD_ENV] = str(ready_fd)
            fds = (ready_fd,)
        return subprocess.Popen(
            [sys.executable, *self.command],
            env=env,
            pass_fds=fds,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )

    def run(self) -> int:
        """Start the workers, wait for a signal, stop them; the exit status."""
        stop = self._on_signals()
        try:
            status = self._start_all()
            if status is not None:
                return status
            host = f"[{self.host}]" if ":" in self.host else self.host
            log.info(
                "supervisor pid %d: %d workers serve ws://%s:%d/ (pids %s)",
                os.getpid(),
                self.count,
                host,
                self.port,
                ", ".join(str(p.pid) for p in self.procs.values()),
            )
            while not stop:
                time.sleep(0.2)
                self._restart_exited(stop)
            return 0
        finally:
            self._stop_all()
            self.sock.close()
            self._folder.cleanup()

    def _on_signals(self) -> list[int]:
        stop: list[int] = []

        def handler(signum: int, _frame: Any) -> None:
            stop.append(signum)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        return stop

    def _start_all(self) -> int | None:
        """Start every worker and wait until each listens; a start-up failure's status."""
        read_fd, write_fd = os.pipe()
        try:
            for index in range(self.count):
                self.procs[index] = self._spawn(index, write_fd)
        finally:
            os.close(write_fd)
        ready = 0
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while ready < self.count:
                failed = next((p for p in self.procs.values() if p.poll() is not None), None)
                if failed is not None:
                    log.error("a worker exited during start-up (status %d)", failed.returncode)
                    return failed.returncode or 1
                if time.monotonic() > deadline:
                    log.error("the workers did not start within %.0f s", START_TIMEOUT_S)
                    return 1
                readable, _, _ = select.select([read_fd], [], [], 0.2)
                if readable:
                    ready += len(os.read(read_fd, 64))
        finally:
            os.close(read_fd)
        return None

    def _restart_exited(self, stop: list[int]) -> None:
        for index, proc in list(self.procs.items()):
            if proc.poll() is None or stop:
                continue
            log.warning(
                "worker %d (pid %d) exited with status %d; starting it again in %.0f s",
                index,
                proc.pid,
                proc.returncode,
                RESTART_DELAY_S,
            )
            time.sleep(RESTART_DELAY_S)
            self.procs[index] = self._spawn(index, None)

    def _stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in time; killed", proc.pid)
                proc.kill()
                proc.wait()
