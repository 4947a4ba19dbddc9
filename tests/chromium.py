"""Headless Chromium for the browser suites: one launcher (:class:`Browser`) and one DevTools
protocol client for a page (:class:`DevToolsPage`, over the websocket of
``--remote-debugging-port``). The Godot harness (``tests/godot/harness.py``) and the console's
browser test both use them."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_DEVTOOLS_RE = re.compile(r"DevTools listening on (ws://\S+)")

#: set to 1 to write the browser suites' screenshots over the ones the docs show
UPDATE_SCREENSHOTS_ENV = "NPCBRIDGE_UPDATE_SCREENSHOTS"


def screenshot_path(documented: Path, tmp_path: Path) -> Path:
    """Where a suite writes the screenshot the docs show as ``documented``: that file itself
    with ``NPCBRIDGE_UPDATE_SCREENSHOTS=1``, else beside the test's other files (a test run
    leaves the working tree as it was)."""
    if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1":
        documented.parent.mkdir(parents=True, exist_ok=True)
        return documented
    return tmp_path / documented.name


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$CHROMIUM`` first), or None."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """Chromium headless on ``url`` with a DevTools port, any extra ``flags``, a profile of its
    own, its stderr read all along (``log``, ``devtools_url``); the block's end stops its whole
    process group."""

    def __init__(
        self,
        chromium: str,
        url: str,
        *,
        window: tuple[int, int] = (1280, 720),
        devtools_port: int = 0,
        flags: Sequence[str] = (),
    ) -> None:
        self.chromium = chromium
        self.flags = list(flags)
        self.url = url
        self.window = window
        self.devtools_port = devtools_port
        self.devtools_url: str | None = None
        self.log: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._reader: threading.Thread | None = None

    def command(self, profile: str) -> list[str]:
        """The command line: headless, no GPU, no background work, the DevTools port."""
        return [
            self.chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--enable-unsafe-swiftshader",
            "--hide-scrollbars",
            f"--window-size={self.window[0]},{self.window[1]}",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            f"--remote-debugging-port={self.devtools_port}",
            *self.flags,
            self.url,
        ]

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="npcb-chromium-")
        self.proc = subprocess.Popen(
            self.command(self._profile.name),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        return self

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log.append(line)
            match = _DEVTOOLS_RE.search(line)
            if match:
                self.devtools_url = match.group(1)

    def running(self) -> bool:
        """Whether the browser process is still alive."""
        return self.proc is not None and self.proc.poll() is None

    def wait_devtools(self, timeout: float = 30.0) -> str:
        """The DevTools websocket URL, once Chromium announced it."""
        deadline = time.monotonic() + timeout
        while self.devtools_url is None:
            if not self.running() or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not announce its DevTools URL:\n" + self.tail())
            time.sleep(0.05)
        return self.devtools_url

    def tail(self, lines: int = 80) -> str:
        """The last lines Chromium logged."""
        return "\n".join(self.log[-lines:])

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        if self._profile is not None:
            self._profile.cleanup()


class DevToolsPage:
    """The DevTools protocol of one page target: ``call(method, params)`` and helpers."""

    def __init__(self, devtools_url: str, match: Callable[[dict[str, Any]], bool]) -> None:
        from websockets.sync.client import connect

        host = urlsplit(devtools_url).netloc
        with urllib.request.urlopen(f"http://{host}/json/list", timeout=10) as resp:
            targets = json.loads(resp.read())
        page = next(t for t in targets if t.get("type") == "page" and match(t))
        self._connection = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.ws = self._connection.__enter__()
        self._ids = itertools.count(1)

    def __enter__(self) -> DevToolsPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.__exit__(None, None, None)

    def wait_loaded(self, url_prefix: str, timeout: float = 30.0) -> None:
        """Wait until the page shows a document under ``url_prefix`` that finished loading."""
        deadline = time.monotonic() + timeout
        while (
            self.evaluate("document.readyState + ' ' + location.href") != "complete " + url_prefix
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the page did not load {url_prefix}")
            time.sleep(0.05)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its result (events in between are skipped)."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        while True:
            reply = json.loads(self.ws.recv(timeout=30))
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"page script failed: {text}")
        return result["result"].get("value")

    def screenshot(self, size: dict[str, int], settle_s: float = 0.8) -> bytes:
        """A PNG of the page at exactly ``size`` (headless Chromium's viewport is smaller than
        ``--window-size``, so the size is set first and the page given time to follow)."""
        self.call(
            "Emulation.setDeviceMetricsOverride", {**size, "deviceScaleFactor": 1, "mobile": False}
        )
        time.sleep(settle_s)
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(shot["data"])
