"""``npcbridge serve`` as a child process, for tests of the command line and of several servers::

    async with serving(env, "--log-level", "debug") as served:
        async with await Client.connect(served.url) as client:
            ...
    assert served.returncode == 0 and "heap settled" in served.log

The server listens on a free port (``--port 0``; a later ``--port`` in ``args`` wins). Its
stderr is read all along, so a chatty server never blocks on a full pipe. The block ends with
SIGTERM (SIGKILL when the server does not exit in time) unless the test already ended it.

Installed plugins named in ``disable_plugins`` (default :data:`HEAVY_PLUGINS`) are not loaded:
the semantic-memory plugin loads an embedding model before the server listens, seconds for
every process, and the main test suite is meant to pass without it installed.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from ..plugin.manager import ENTRY_POINT_GROUP

#: the start-up line that carries the URL
LISTENING = r"listening on (ws://\S+)"
#: installed plugins the served process leaves out by default (slow to start)
HEAVY_PLUGINS = ("semantic_memory",)


def _config_without(env: Mapping[str, str], names: Iterable[str], folder: Path) -> dict[str, str]:
    """``env`` whose ``NPCBRIDGE_CONFIG`` also disables the installed plugins among ``names``."""
    installed = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    disabled = [name for name in names if name in installed]
    if not disabled:
        return dict(env)
    given = env.get("NPCBRIDGE_CONFIG")
    text = Path(given).read_text(encoding="utf-8") if given else ""
    if "disable_plugins" in text:  # the test decides itself
        return dict(env)
    config = folder / "serve.toml"
    quoted = ", ".join(f'"{name}"' for name in disabled)
    # a top-level key: before the file's first table
    config.write_text(f"disable_plugins = [{quoted}]\n{text}", encoding="utf-8")
    return {**env, "NPCBRIDGE_CONFIG": str(config)}


class ServeProcess:
    """A running ``npcbridge serve``: ``proc``, ``url`` (from the ``ready`` line) and its log."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str, head: str) -> None:
        self.proc = proc
        self.url = url
        #: stderr up to and including the ``ready`` line
        self.head = head
        self._rest: list[str] = []
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self._rest.append(line.decode(errors="replace"))

    @property
    def log(self) -> str:
        """Everything the server wrote to stderr so far (all of it once it has ended)."""
        return self.head + "".join(self._rest)

    @property
    def returncode(self) -> int | None:
        """The exit status, None while it runs."""
        return self.proc.returncode

    async def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM (SIGKILL after ``timeout_s``), wait for the end of its log; the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except TimeoutError:
                self.proc.kill()
        code = await self.proc.wait()
        await asyncio.wait_for(self._drain, timeout_s)
        return code


@asynccontextmanager
async def serving(
    env: Mapping[str, str],
    *args: str,
    ready: str = LISTENING,
    timeout_s: float = 60,
    disable_plugins: Iterable[str] = HEAVY_PLUGINS,
) -> AsyncIterator[ServeProcess]:
    """Start ``npcbridge serve --port 0 *args`` with ``env``; yield it once a stderr line matches
    ``ready`` (its first group, if any, is the ``url``); stop it at the end of the block."""
    with tempfile.TemporaryDirectory(prefix="npcbridge-serve-") as folder:
        env = _config_without(env, disable_plugins, Path(folder))
        async with _serving(env, args, ready, timeout_s) as served:
            yield served


@asynccontextmanager
async def _serving(
    env: Mapping[str, str], args: tuple[str, ...], ready: str, timeout_s: float
) -> AsyncIterator[ServeProcess]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "npcbridge.cli",
        "serve",
        "--port",
        "0",
        *args,
        env=dict(env),
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        head = ""
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), timeout_s)).decode()
            if not line:
                raise RuntimeError(f"npcbridge serve exited before it was ready: {head}")
            head += line
            match = re.search(ready, line)
            if match:
                break
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    served = ServeProcess(proc, match.group(1) if match.groups() else "", head)
    try:
        yield served
    finally:
        await served.stop(timeout_s)
