"""Benchmark 9: what forwarding an HTTP transport request to the worker holding its session costs.

    python -m bench.bench_http_forward [--pings 2000] [--says 100] [--profile groq-750]

``npcbridge serve --workers 2`` and the mock. The benchmark keeps one kept-alive connection to
each worker (a connection stays on the worker that accepted it; the key of the session opened
through it names that worker) and, on the same connection, sends requests for a session of
that worker (answered there) and for a session of the other one (forwarded), in turn:
``POST ping`` (the request alone) and ``POST say?wait=10&merge=1`` (a whole reply, the mock's
~100 ms included). Figures: wall time per request at concurrency 1 (p50, p99; the two kinds
sent in turn), and the server's CPU per ping (every process of it: the supervisor and both
workers), pings of one kind at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.common import (
    append_result,
    command_line,
    mock,
    now,
    npcbridge,
    percentile,
    raise_nofile,
    workdir,
)
from bench.loadgen import process_tree_cpu_s

COLUMNS = [
    "date", "profile", "request", "answered", "n", "p50 ms", "p99 ms", "server CPU ms/request",
    "command",
]  # fmt: skip
HELLO = {"type": "hello", "protocol": 1, "client": "bench/1"}
SAY = {"type": "say", "npc": "blacksmith", "player": "p1", "text": "Hello there."}


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON body; the JSON answer (a 2xx is asserted)."""
    async with http.post(url, json=body) as answer:
        assert answer.status < 300, (answer.status, await answer.text())
        return dict(await answer.json())


#: sessions per worker: each takes a share of the requests below ``max_messages_per_s``
SESSIONS_PER_WORKER = 32


async def worker_connections(base: str) -> dict[str, tuple[aiohttp.ClientSession, list[str]]]:
    """One single-connection client per worker, each with the keys of sessions opened through
    it (so held by that worker), by worker ("0", "1")."""
    found: dict[str, tuple[aiohttp.ClientSession, list[str]]] = {}
    for _ in range(64):
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        key = str((await post(http, f"{base}/v1/sessions", HELLO))["session"])
        worker = key.split(".", 1)[0]
        if worker in found:
            await http.close()
            continue
        keys = [key]
        for _ in range(SESSIONS_PER_WORKER - 1):
            keys.append(str((await post(http, f"{base}/v1/sessions", HELLO))["session"]))
        assert {k.split(".", 1)[0] for k in keys} == {worker}, "the connection changed worker"
        found[worker] = (http, keys)
        if len(found) == 2:
            return found
    raise RuntimeError("every connection reached the same worker")


async def one(
    pairs: list[tuple[aiohttp.ClientSession, list[str], list[str]]],
    base: str,
    request: str,
    answered: str,
    n: int,
) -> float:
    """Send request number ``n`` of a kind; its wall time in ms."""
    http, own, other = pairs[n % len(pairs)]
    keys = own if answered == "here" else other
    key = keys[n // len(pairs) % len(keys)]
    if request == "ping":
        url, body = f"{base}/v1/sessions/{key}/messages", {"type": "ping"}
    else:
        url, body = f"{base}/v1/sessions/{key}/messages?wait=10&merge=1", {**SAY, "id": n}
    started = time.perf_counter()
    answer = await post(http, url, body)
    assert answer["messages"], answer
    return (time.perf_counter() - started) * 1000


async def measure(base: str, server_pid: int, pings: int, says: int) -> list[dict[str, Any]]:
    """The figures of each (request, answered) pair."""
    clients = await worker_connections(base)
    pairs = [
        (http, own, clients[other][1])
        for worker, (http, own) in clients.items()
        for other in clients
        if other != worker
    ]
    kinds = ("here", "forwarded")
    for n in range(50):  # warm up both paths
        for answered in kinds:
            await one(pairs, base, "ping", answered, n)
    rows = []
    for request, count in (("ping", pings), ("say", says)):
        # wall time: the two kinds in turn, so the machine's load hits both alike
        times: dict[str, list[float]] = {answered: [] for answered in kinds}
        for n in range(count):
            for answered in kinds:
                times[answered].append(await one(pairs, base, request, answered, n))
        cpu_ms: dict[str, Any] = dict.fromkeys(kinds, "–")
        if request == "ping":
            # CPU: one kind at a time (the server's CPU counters cannot tell them apart)
            for answered in kinds:
                cpu_before = process_tree_cpu_s(server_pid)
                for n in range(count):
                    await one(pairs, base, request, answered, n)
                spent = process_tree_cpu_s(server_pid) - cpu_before
                cpu_ms[answered] = round(spent * 1000 / count, 3)
        for answered, values in times.items():
            rows.append(
                {
                    "request": request,
                    "answered": answered,
                    "n": len(values),
                    "p50": round(percentile(values, 50), 3),
                    "p99": round(percentile(values, 99), 3),
                    "cpu_ms": cpu_ms[answered],
                }
            )
    for http, _ in clients.values():
        await http.close()
    return rows


def main() -> None:
    """Run the benchmark; print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--says", type=int, default=100)
    parser.add_argument("--profile", default="groq-750")
    args = parser.parse_args()
    raise_nofile()
    with workdir("http-forward") as tmp, mock(args.profile, tmp) as (_m, upstream):
        with npcbridge(upstream, tmp, workers=2) as (server, ws_url):
            base = ws_url.replace("ws://", "http://", 1).rstrip("/")
            rows = asyncio.run(measure(base, server.pid, args.pings, args.says))
    for row in rows:
        print(json.dumps(row))
        append_result(
            "9. HTTP transport under --workers 2: a request answered here or forwarded",
            COLUMNS,
            [
                now(), args.profile, row["request"], row["answered"], row["n"], row["p50"],
                row["p99"], row["cpu_ms"], f"`{command_line()}`",
            ],
        )  # fmt: skip


if __name__ == "__main__":
    main()
