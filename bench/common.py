"""Shared plumbing for the benchmarks: processes, ports, percentiles, RSS, the results table.

Every process (mock upstream, npcbridge server, LiteLLM proxy, load generator) runs on its own,
so the load generator never steals the server's event loop (the machine has 2 cores).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
PY = sys.executable
LITELLM_VENV = BENCH / ".venv-litellm"

#: (ttft_ms, tokens_per_s) of the Groq-like profiles
PROFILES: dict[str, tuple[float, float]] = {"groq-750": (50.0, 750.0), "fast-1800": (50.0, 1800.0)}


def raise_nofile() -> int:
    """Raise the soft open-files limit to the hard limit (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    """A free loopback TCP port (for processes that cannot report the one they bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100), nearest-rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p99, max of a list of milliseconds."""
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3) if values else float("nan"),
    }


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_http(url: str, timeout_s: float = 60.0) -> None:
    """Poll ``url`` until it answers 2xx."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up: {last}")


def wait_log(log: Path, text: str, timeout_s: float = 60.0) -> None:
    """Wait until ``text`` appears in the log file ``log``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{text!r} did not appear in {log}")


class Proc:
    """A child process, stopped with SIGTERM (then SIGKILL) on :meth:`stop`."""

    def __init__(self, argv: list[str], *, log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log = log
        self._log_file = open(log, "ab")  # noqa: SIM115
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            stdin=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.popen.pid

    def read_json_line(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """The next JSON line the child prints on stdout."""
        assert self.popen.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.popen.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.argv[:3]} exited; see {self.log}")
            line = line.strip()
            if line.startswith(b"{"):
                return dict(json.loads(line))
        raise RuntimeError(f"{self.argv[:3]} printed no JSON line in time")

    def stop(self) -> None:
        """SIGTERM, wait up to 10 s, then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log_file.close()


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    """A temporary directory for one benchmark's logs, config and store."""
    with tempfile.TemporaryDirectory(prefix=f"npcbridge-bench-{name}-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def mock(profile: str, tmp: Path, *, words: int = 40) -> Iterator[tuple[Proc, str]]:
    """The Groq-like mock upstream in its own process: the project's fake upstream whose
    replies are ``words`` time-stamped tokens; yields (proc, base_url)."""
    ttft_ms, tps = PROFILES[profile]
    proc = Proc(
        [
            PY,
            "-m",
            "npcbridge.testing.fake_upstream",
            "--ttft-ms",
            str(ttft_ms),
            "--tokens-per-s",
            str(tps),
            "--stamp-words",
            str(words),
        ],
        log=tmp / f"mock-{profile}.log",
    )
    try:
        info = proc.read_json_line()
        yield proc, str(info["base_url"])
    finally:
        proc.stop()


NPC_TOML = """
[npcs.blacksmith]
name = "Brom"
description = "The village blacksmith, rough but kind."
personality = "gruff, honest, secretly soft-hearted"
speech_style = "short sentences, calls everyone 'lad'"
"""


@contextlib.contextmanager
def npcbridge(
    upstream: str,
    tmp: Path,
    *,
    log_level: str = "INFO",
    env: dict[str, str] | None = None,
    server_args: Sequence[str] = (),
    workers: int = 1,
) -> Iterator[tuple[Proc, str]]:
    """The npcbridge server (``bench/server.py``) in its own process (``workers`` of them on
    one port under the supervisor when more than one); yields (proc, ws_url).

    The store is a SQLite file in ``tmp``, the per-IP connection cap is raised (every load
    generator connects from 127.0.0.1) and the client-side rate limiter (sized for Groq's plans,
    which the mock does not have) is off; everything else is the default configuration.
    """
    port = free_port()
    config = tmp / "npcbridge.toml"
    config.write_text(
        f'log_level = "{log_level}"\n'
        "[server]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        "max_connections_per_ip = 100000\n"
        "[upstream]\n"
        f'base_url = "{upstream}"\n'
        # the client-side Groq rate limiter is sized for Groq's plans; the mock has no limits
        "[ratelimit]\n"
        "enabled = false\n"
        "[store]\n"
        f'url = "{tmp / "bench.db"}"\n' + NPC_TOML
    )
    proc = Proc(
        [
            PY,
            "-m",
            "bench.server",
            "--config",
            str(config),
            "--loop",
            os.environ.get("BENCH_LOOP", "asyncio"),
            *(["--workers", str(workers)] if workers > 1 else []),
            *server_args,
        ],
        log=tmp / "npcbridge.log",
        env={"GROQ_API_KEY": BENCH_KEY, **(env or {})},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        if workers > 1:  # the first worker answers; the load starts once every one listens
            wait_log(proc.log, "workers serve ws://")
        yield proc, f"ws://127.0.0.1:{port}/"
    finally:
        proc.stop()


#: the key every benchmark client sends (LiteLLM's master key; the mock checks none)
BENCH_KEY = "sk-npcbridge-bench-5f1c9a7e3d2b4086"

#: LiteLLM's proxy configuration (its production settings; see the file)
LITELLM_YAML = (BENCH / "litellm.yaml").read_text()


def litellm_available() -> bool:
    """True when the LiteLLM proxy is installed in ``bench/.venv-litellm``."""
    return (LITELLM_VENV / "bin" / "litellm").exists()


@contextlib.contextmanager
def litellm(upstream: str, tmp: Path, *, workers: int | None = None) -> Iterator[tuple[Proc, str]]:
    """LiteLLM's proxy in front of ``upstream`` with its production settings
    (``bench/litellm.yaml``; ``workers`` processes, default one per core); yields
    (proc, base_url)."""
    workers = workers or os.cpu_count() or 1
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(LITELLM_YAML.format(upstream=upstream, key=BENCH_KEY))
    proc = Proc(
        [
            str(LITELLM_VENV / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(workers),
        ],
        log=tmp / "litellm.log",
        # offline: a model name LiteLLM has no Hugging Face tokenizer for, and no hub look-ups
        env={
            "LITELLM_LOG": "ERROR",
            "LITELLM_MODE": "PRODUCTION",
            "LITELLM_TELEMETRY": "False",
            "NO_DOCS": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        },
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout_s=180)
        yield proc, f"http://127.0.0.1:{port}/v1"
    finally:
        proc.stop()


def loadgen(
    args: list[str], *, timeout_s: float = 900, module: str = "bench.loadgen"
) -> dict[str, Any]:
    """Run ``python -m bench.loadgen ARGS`` (or another load generator ``module``) to
    completion; return the JSON it prints."""
    done = subprocess.run(
        [PY, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [ln for ln in done.stdout.decode().splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen {args[:2]} failed: {done.stderr.decode()[-2000:]}")
    return dict(json.loads(lines[-1]))


def command_line() -> str:
    """How this benchmark was started (for the results table); ``BENCH_NOTE`` is appended."""
    note = os.environ.get("BENCH_NOTE")
    return (
        "python -m "
        + ".".join(Path(sys.argv[0]).with_suffix("").parts[-2:])
        + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
        + (f" [{note}]" if note else "")
    )


def machine() -> str:
    """A short description of this machine."""
    return f"{os.cpu_count()} cores, Python {platform.python_version()}"


def append_result(section: str, columns: list[str], values: list[Any]) -> None:
    """Append a row to the table of ``section`` in bench/RESULTS.md (made if missing)."""
    row = "| " + " | ".join(str(v) for v in values) + " |"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    lines = text.rstrip("\n").split("\n")
    heading = f"## {section}"
    if heading not in lines:
        lines += [
            "",
            heading,
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "|".join(" --- " for _ in columns) + "|",
            row,
        ]
    else:
        i = lines.index(heading) + 1
        while i < len(lines) and not lines[i].startswith("|"):
            i += 1
        while i < len(lines) and lines[i].startswith("|"):
            i += 1
        lines.insert(i, row)
    RESULTS.write_text("\n".join(lines) + "\n")


def now() -> str:
    """UTC time for the results table."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")


async def alternating(
    targets: dict[str, Callable[[], Awaitable[float | None]]], rounds: int, warmup: int
) -> dict[str, Any]:
    """Run one turn of each target per round, in a shuffled order (so drift hits all alike),
    ``warmup`` rounds not counted; each target's overheads (ms) and its failed turns."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    errors = dict.fromkeys(targets, 0)
    for round_ in range(warmup + rounds):
        order = list(targets)
        random.shuffle(order)
        for name in order:
            try:
                overhead = await targets[name]()
            except Exception:
                overhead = None
            if round_ < warmup:
                continue
            if overhead is None:
                errors[name] += 1
            else:
                samples[name].append(overhead)
    return {"samples": samples, "errors": errors}
