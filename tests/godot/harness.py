"""Run a packed Godot 4.6 project in headless Chromium and collect what it prints.

One :class:`GodotHarness` serves, on a free loopback port, the engine files, ``page.html`` and the
project's PCK with the COOP/COEP headers the engine needs, starts Chromium headless with a
DevTools port, and records every line the engine prints (the page forwards ``onPrint``,
``onPrintError`` and ``onExit`` to ``POST /log`` in order). The GDScript side talks back to the
harness over plain HTTP on the same origin:

- ``POST /control/restart?down_ms=N`` is forwarded to the test stack's control URL (restarts the
  npcbridge WebSocket server);
- ``POST /screenshot`` captures the page with the DevTools protocol (``Page.captureScreenshot``)
  before it answers, so a scene can wait for its picture to be taken before it quits.

Test scripts print ``NPCB_RESULT {json}`` per test and quit with an exit code.

Ports: by default the harness's HTTP server and Chromium's DevTools endpoint take free ports
the OS picks. Where only some ports are allowed, fix them with the ``http_port`` /
``devtools_port`` arguments or the ``NPCBRIDGE_GODOT_HTTP_PORT`` /
``NPCBRIDGE_GODOT_DEVTOOLS_PORT`` environment variables (an argument wins over the variable;
0 means "any free port").
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from tests.chromium import Browser, DevToolsPage, find_chromium  # noqa: F401 - re-exported

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page.html"
RESULT_PREFIX = "NPCB_RESULT "
_ERROR_RE = re.compile(r"^\s*(USER )?(SCRIPT )?ERROR\b|^\s*Parse Error|^\s*Aborted")
#: Environment variables that fix the harness's ports (see the module docstring).
HTTP_PORT_ENV = "NPCBRIDGE_GODOT_HTTP_PORT"
DEVTOOLS_PORT_ENV = "NPCBRIDGE_GODOT_DEVTOOLS_PORT"

#: Lines on the error stream that the engine prints in this setup and that do not indicate a
#: problem with the project under test: the single-threaded web build reports, as it quits, the
#: WorkerThreadPool groups an AudioStreamPlayer2D/3D used (any project that plays one, even
#: with the Dummy audio driver, prints it once at exit).
HARMLESS_ERRORS: tuple[str, ...] = (
    "Pages in use exist at exit in PagedAllocator: N16WorkerThreadPool5GroupE",
)

_MIME = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript",
    ".wasm": "application/wasm",
    ".pck": "application/octet-stream",
}


def resolve_port(given: int | None, env_name: str) -> int:
    """The port to use: ``given`` when set, else the integer in ``$env_name``, else 0 (any free
    port). A variable that is not a port number stops the run with a one-line error."""
    if given is not None:
        return given
    raw = os.environ.get(env_name, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"{env_name} must be a port number (0-65535), not {raw!r}")
    return int(raw)


@dataclass
class RunResult:
    """Everything one engine run produced."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    exit_code: int | None = None
    timed_out: bool = False
    screenshot: bytes | None = None
    browser_log: str = ""
    seconds: float = 0.0
    #: The port the harness served the page on, and Chromium's DevTools URL (None when the
    #: browser never announced it).
    http_port: int = 0
    devtools_url: str | None = None

    @property
    def results(self) -> list[dict[str, Any]]:
        """The ``NPCB_RESULT`` records, in the order printed."""
        out = []
        for kind, text in self.lines:
            if kind == "out" and text.startswith(RESULT_PREFIX):
                out.append(json.loads(text[len(RESULT_PREFIX) :]))
        return out

    @property
    def printed(self) -> list[str]:
        """Every ``print()`` line."""
        return [text for kind, text in self.lines if kind == "out"]

    def script_errors(self) -> list[str]:
        """Lines that signal a failure: SCRIPT ERROR, push_error (ERROR:), engine errors, JS errors.

        Warnings (``WARNING:``, e.g. from push_warning) are not failures; see :meth:`warnings`.
        """
        bad = []
        for kind, text in self.lines:
            if kind == "js-error":
                bad.append(text)
            elif kind == "err" and _ERROR_RE.match(text):
                if not any(h in text for h in HARMLESS_ERRORS):
                    bad.append(text)
        return bad

    def warnings(self) -> list[str]:
        """``WARNING:`` lines on the error stream."""
        return [t for k, t in self.lines if k == "err" and t.lstrip().startswith("WARNING")]

    def transcript(self, limit: int = 200) -> str:
        """The last ``limit`` lines, for assertion messages."""
        return "\n".join(f"[{k}] {t}" for k, t in self.lines[-limit:])


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lines: dict[int, tuple[str, str]] = {}
        self.exit_code: int | None = None
        self.exited = threading.Event()
        self.screenshot: bytes | None = None
        self.files: dict[str, Path | bytes] = {}
        self.control_url: str | None = None
        self.browser: Browser | None = None
        self.window: dict[str, int] = {"width": 1280, "height": 720}


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path.lstrip("/")
            item = state.files.get(path)
            if item is None:
                self._send(404, b"not found")
                return
            body = item.read_bytes() if isinstance(item, Path) else item
            self._send(200, body, _MIME.get(Path(path).suffix, "application/octet-stream"))

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if parts.path == "/log":
                record = json.loads(body)
                with state.lock:
                    state.lines[int(record["seq"])] = (record["kind"], record["text"])
                    if record["kind"] == "exit":
                        state.exit_code = int(record["text"])
                        state.exited.set()
                self._send(200, b"ok")
            elif parts.path == "/control/restart":
                if not state.control_url:
                    self._send(503, b"no control url")
                    return
                url = state.control_url.rstrip("/") + "/restart"
                if parts.query:
                    url += "?" + parts.query
                try:
                    with urllib.request.urlopen(
                        urllib.request.Request(url, data=b"", method="POST"), timeout=30
                    ) as resp:
                        self._send(resp.status, resp.read())
                except Exception as exc:  # noqa: BLE001 - report to the engine side
                    self._send(502, str(exc).encode())
            elif parts.path == "/screenshot":
                try:
                    devtools_url = state.browser.devtools_url if state.browser else None
                    state.screenshot = _capture(devtools_url, state.window)
                    self._send(200, b"ok")
                except Exception as exc:  # noqa: BLE001
                    self._send(500, str(exc).encode())
            else:
                self._send(404, b"not found")

    return Handler


def _capture(devtools_url: str | None, size: dict[str, int]) -> bytes:
    """Take a PNG of the test page through the Chrome DevTools protocol."""
    if not devtools_url:
        raise RuntimeError("no DevTools URL")
    with DevToolsPage(devtools_url, lambda target: "page.html" in target.get("url", "")) as page:
        return page.screenshot(size)


#: Chromium flags of a run with audio (see GodotHarness.run).
AUDIO_FLAGS = [
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


class GodotHarness:
    """Serves an engine build and runs packed projects in headless Chromium.

    ``http_port`` / ``devtools_port`` fix the ports (default: ``$NPCBRIDGE_GODOT_HTTP_PORT`` /
    ``$NPCBRIDGE_GODOT_DEVTOOLS_PORT``, else free ports the OS picks).
    """

    def __init__(
        self,
        engine_dir: Path,
        chromium: str,
        control_url: str | None = None,
        *,
        http_port: int | None = None,
        devtools_port: int | None = None,
    ) -> None:
        self.engine_dir = engine_dir
        self.chromium = chromium
        self.control_url = control_url
        self.http_port = resolve_port(http_port, HTTP_PORT_ENV)
        self.devtools_port = resolve_port(devtools_port, DEVTOOLS_PORT_ENV)

    def run(
        self,
        pck: bytes,
        args: list[str] | None = None,
        *,
        timeout: float = 180.0,
        window: tuple[int, int] = (1280, 720),
        audio: bool = False,
    ) -> RunResult:
        """Run one project until it quits (or ``timeout`` seconds pass); return what it printed.

        ``audio``: the engine's web audio driver instead of the Dummy one (it mixes in the
        browser's audio worklet, in real time), Chromium allowed to play without a user gesture
        and given a fake microphone (a beeping tone) that needs no permission prompt."""
        state = _State()
        state.control_url = self.control_url
        state.window = {"width": window[0], "height": window[1]}
        state.files = {name.name: name for name in self.engine_dir.iterdir() if name.is_file()}
        state.files["page.html"] = PAGE
        state.files["run.pck"] = pck
        server = ThreadingHTTPServer(("127.0.0.1", self.http_port), _handler(state))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        base = f"http://127.0.0.1:{port}"
        all_args = [f"--harness={base}", *(args or [])]
        query = {"pack": "run.pck", "args": json.dumps(all_args), "audio": "web" if audio else ""}
        url = f"{base}/page.html?" + urlencode(query)
        audio_flags = AUDIO_FLAGS if audio else []
        result = RunResult()
        started = time.monotonic()
        browser = Browser(
            self.chromium,
            url,
            window=window,
            devtools_port=self.devtools_port,
            flags=audio_flags,
        )
        with browser:
            state.browser = browser
            deadline = started + timeout
            while not state.exited.is_set():
                if not browser.running():
                    break
                if time.monotonic() > deadline:
                    result.timed_out = True
                    break
                state.exited.wait(0.2)
            time.sleep(0.2)  # let the last log posts land
        server.shutdown()
        server.server_close()
        with state.lock:
            result.lines = [state.lines[k] for k in sorted(state.lines)]
        result.exit_code = state.exit_code
        result.screenshot = state.screenshot
        result.browser_log = browser.tail()
        result.seconds = time.monotonic() - started
        result.http_port = port
        result.devtools_url = browser.devtools_url
        return result
