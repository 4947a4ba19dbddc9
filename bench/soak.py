"""Soak: steady load for a while, sampling the server's memory, tasks, threads and fds.

    python -m bench.soak [--minutes 10] [--players 20] [--profile groq-750]

The load generator keeps ``--players`` players talking in a closed loop; every ``--every``
seconds the server's RSS (``/proc``), open file descriptors, threads and asyncio tasks
(``/healthz``) are sampled. Growth is judged between the first sample after warm-up and the last.
Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import (
    PY,
    ROOT,
    append_result,
    command_line,
    mock,
    now,
    npcbridge,
    raise_nofile,
    rss_kib,
    workdir,
)


def sample(pid: int, port: int) -> dict[str, int]:
    """RSS KiB, fds, threads and asyncio tasks of the server."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        health = json.loads(response.read())
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    return {
        "rss_kib": rss_kib(pid),
        "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
        "threads": threads,
        "tasks": int(health.get("tasks", -1)),
        "connections": int(health.get("connections", -1)),
    }


def main() -> None:
    """Run the soak and append a row to bench/RESULTS.md."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--profile", default="groq-750")
    parser.add_argument("--every", type=float, default=30.0)
    args = parser.parse_args()
    raise_nofile()
    seconds = args.minutes * 60
    with workdir("soak") as tmp, mock(args.profile, tmp) as (_m, upstream):
        with npcbridge(upstream, tmp) as (server, ws_url):
            port = int(ws_url.rsplit(":", 1)[1].strip("/"))
            load = subprocess.Popen(
                [PY, "-m", "bench.loadgen", "players", "--ws", ws_url, "--players",
                 str(args.players), "--duration", str(seconds), "--warmup", "5",
                 "--player-mode", "sticky"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out: list[bytes] = []
            reader = threading.Thread(target=lambda: out.append(load.stdout.read()))  # type: ignore[union-attr]
            reader.start()
            samples = []
            started = time.monotonic()
            while load.poll() is None:
                time.sleep(args.every)
                if load.poll() is not None:
                    break
                point = {"t_s": round(time.monotonic() - started), **sample(server.pid, port)}
                samples.append(point)
                print(json.dumps(point), flush=True)
            reader.join()
            idle = sample(server.pid, port)
            print("after the load stopped:", json.dumps(idle), flush=True)
    result = json.loads(out[0].decode().strip().splitlines()[-1])
    first = samples[1] if len(samples) > 2 else samples[0]
    last = samples[-1]
    print(json.dumps(result))
    append_result(
        "Soak (steady load)",
        ["date", "minutes", "players", "turns", "turns/s", "errors", "RSS KiB first→last",
         "tasks first→last (idle after)", "fds first→last", "threads first→last", "command"],
        [now(), args.minutes, args.players, result["turns"], result["turns_per_s"],
         result["errors"], f"{first['rss_kib']}→{last['rss_kib']}",
         f"{first['tasks']}→{last['tasks']} ({idle['tasks']})", f"{first['fds']}→{last['fds']}",
         f"{first['threads']}→{last['threads']}", f"`{command_line()}`"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
