"""``npcbridge serve --workers N``: several real server processes on one port, one SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_budget_reservations import LIMIT_USD, billed_usd, say_all, worst_turn_usd
from test_memory_processes import SMITH, serve_env, talk

from npcbridge.client import Client, NpcBridgeError
from npcbridge.server.http_forward import PEER_HEADER, SECRET_HEADER
from npcbridge.testing.fake_upstream import FakeUpstream
from npcbridge.testing.serving import serving
from tests.http_helpers import SMITH as HTTP_SMITH
from tests.http_helpers import Answer, EventStream, Transport, decode_body, request

#: the supervisor's line once every worker listens
READY = r"workers serve (ws://\S+)"
SAY = {"type": "say", "id": 1, "npc": "smith", "player": "p1", "text": "[[words:12]]"}


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def worker_pids(log: str) -> list[int]:
    match = re.search(r"workers serve \S+ \(pids ([\d, ]+)\)", log)
    assert match, log
    return [int(pid) for pid in match.group(1).split(", ")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_workers_share_the_port_the_store_and_metrics(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = serve_env(str(tmp_path / "shared.db"), fake_upstream)
    async with serving(env, "--workers", "2", ready=READY) as served:
        pids = worker_pids(served.log)
        assert len(pids) == 2 and all(alive(pid) for pid in pids)

        async def player(n: int) -> None:
            async with await Client.connect(served.url) as client:
                await client.define_npc("smith", SMITH)
                await talk(client, "smith", f"p{n}", f"hello {n}")

        # 24 connections: the kernel spreads them over both workers (all on one: 2**-23)
        await asyncio.gather(*(player(n) for n in range(24)))
        # a player's memory is in the shared file, whichever worker answers the next turn
        async with await Client.connect(served.url) as client:
            await client.define_npc("smith", SMITH)
            await talk(client, "smith", "p3", "remember me?")
        assert {"role": "user", "content": "hello 3"} in fake_upstream.requests[-1].messages

        await asyncio.sleep(1.5)  # every worker has published its series since
        base = served.url.replace("ws://", "http://")
        text = http_get(base + "metrics")
        turns: dict[str, float] = {}
        for worker, value in re.findall(
            r'npcbridge_turns_total\{[^}]*worker="(\d)"[^}]*\} (\S+)', text
        ):
            turns[worker] = turns.get(worker, 0.0) + float(value)
        assert set(turns) == {"0", "1"} and all(turns.values())
        assert sum(turns.values()) == 25
        assert text.count("# TYPE npcbridge_turns_total counter") == 1
        pid = served.proc.pid
        code = await served.stop()
    assert code == 0
    assert not alive(pid) and not any(alive(p) for p in pids)


async def test_budgets_hold_across_workers(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "npcbridge.toml"
    config.write_text(
        '[upstream]\ndefault_model = "pricey"\n[server]\nmax_in_flight = 64\n'
        f"[budget]\nper_player_usd_per_day = {LIMIT_USD}\n"
        '[[models]]\nid = "pricey"\ninput_usd_per_m = 1000.0\noutput_usd_per_m = 1000.0\n'
        'tier = "small"\nfallbacks = []\n'
    )
    env = {**serve_env(str(tmp_path / "budget.db"), fake_upstream), "NPCBRIDGE_CONFIG": str(config)}
    fake_upstream.ttft_ms = 500
    async with serving(env, "--workers", "2", ready=READY) as served:
        outcomes = [
            outcome
            for batch in await asyncio.gather(*(say_all(served.url, 8) for _ in range(8)))
            for outcome in batch
        ]
    served_costs = [cost for finish, cost in outcomes if finish == "stop"]
    assert served_costs and len(served_costs) < 64
    assert {finish for finish, _ in outcomes} == {"stop", "budget_exceeded"}
    assert billed_usd(fake_upstream) <= LIMIT_USD + worst_turn_usd(fake_upstream)


async def test_a_crashed_worker_is_started_again(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = serve_env(str(tmp_path / "crash.db"), fake_upstream)
    async with serving(env, "--workers", "2", ready=READY) as served:
        first, second = worker_pids(served.log)
        os.kill(first, signal.SIGKILL)
        for _ in range(100):
            await asyncio.sleep(0.1)
            if "starting it again" in served.log and served.log.count("listening on") >= 3:
                break
        assert f"worker 0 (pid {first}) exited with status -9" in served.log
        async with await Client.connect(served.url) as client:  # still served
            await client.define_npc("smith", SMITH)
            await talk(client, "smith", "p1", "still there?")
        assert alive(second)


async def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    env = serve_env(str(tmp_path / "no-such-folder" / "x.db"))
    with pytest.raises(RuntimeError, match="exited before it was ready") as failed:
        async with serving(env, "--workers", "2", ready=READY):
            pass
    assert "does not exist" in str(failed.value)
    assert "a worker exited during start-up (status 2)" in str(failed.value)


async def test_upstream_rate_limits_hold_across_workers(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # 2 requests a minute for the whole server, whichever worker each player reaches
    config = tmp_path / "npcbridge.toml"
    config.write_text("[ratelimit]\nrpm = 2\n")
    env = {**serve_env(str(tmp_path / "rl.db"), fake_upstream), "NPCBRIDGE_CONFIG": str(config)}
    if time.time() % 60 > 50:  # keep every request in one fixed minute window
        await asyncio.sleep(61 - time.time() % 60)
    async with serving(env, "--workers", "2", ready=READY) as served:

        async def player(n: int) -> str:
            async with await Client.connect(served.url) as client:
                persona = {**SMITH, "fallbacks": [], "latency_budget_ms": 100}
                await client.define_npc("smith", persona)
                try:
                    await (await client.say("smith", f"p{n}", "hello")).text()
                except NpcBridgeError as exc:
                    return exc.code
                return "stop"

        outcomes = await asyncio.gather(*(player(n) for n in range(12)))
    assert sorted(outcomes) == ["rate_limited"] * 10 + ["stop"] * 2
    assert len(fake_upstream.requests) == 2


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def _workers_of(keys: list[str]) -> set[str]:
    return {key.split(".", 1)[0] for key in keys}


async def sessions_on_both_workers(http: Transport, count: int = 16) -> list[str]:
    """``count`` sessions, each opened on a new connection, at least one on each worker, each
    with the NPC defined. The kernel spreads connections over the workers by a hash of their
    addresses, so ``count`` of them can all reach one worker (2**(1 - count)): then more are
    opened until one reaches the other worker, and it replaces the last key."""
    keys = [await http.open() for _ in range(count)]
    for _ in range(200):
        if _workers_of(keys) == {"0", "1"}:
            break
        key = await http.open()
        if _workers_of([key]) != _workers_of(keys):
            keys[-1] = key
    assert _workers_of(keys) == {"0", "1"}, keys
    for key in keys:
        defined = await http.post(key, {**HTTP_SMITH, "id": "d"})
        assert defined.status == 200 and defined.json()["messages"] == [{"id": "d", "type": "ok"}]
    return keys


async def test_http_sessions_are_served_whichever_worker_takes_a_request(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = serve_env(str(tmp_path / "http.db"), fake_upstream)
    async with serving(env, "--workers", "2", ready=READY) as served:
        port = port_of(served.url)
        http = Transport(port)  # every request on a new TCP connection
        keys = await sessions_on_both_workers(http)
        cursors = dict.fromkeys(keys, 1)
        for _ in range(3):
            for key in keys:
                pong = await http.post(key, {"type": "ping"})
                cursors[key] += 1
                assert pong.json() == {"cursor": cursors[key], "messages": [{"type": "pong"}]}
        for key in keys:
            # msgpack both ways, and an error answer's status and headers, whoever answers
            packed = await http.post(key, {"type": "ping"}, msgpack_body=True)
            cursors[key] += 1
            assert packed.headers["content-type"] == "application/msgpack"
            assert decode_body(packed) == {"cursor": cursors[key], "messages": [{"type": "pong"}]}
            wrong = await http.call("PUT", f"/v1/sessions/{key}/messages")
            assert (wrong.status, wrong.headers["allow"]) == (405, "GET, POST")
            assert wrong.json()["message"] == "method not allowed"
        for n, key in enumerate(keys[:6]):
            said = await http.post(key, {**SAY, "id": n}, "?wait=10&merge=1")
            messages = said.json()["messages"]
            assert [m["type"] for m in messages] == ["reply.start", "reply.delta", "reply.end"]
            assert messages[1]["text"] == messages[2]["text"] and messages[2]["text"]
            cursors[key] = said.json()["cursor"]
        # a long-poll held by the owner, answered when a message posted on another connection
        # (perhaps to the other worker) exists
        for key in keys[:4]:
            poll = asyncio.create_task(http.poll(key, f"?cursor={cursors[key]}&wait=10"))
            await asyncio.sleep(0.2)
            assert not poll.done()
            await http.post(key, {"type": "ping"})
            polled = (await poll).json()
            assert polled["messages"] == [{"type": "pong"}]
            cursors[key] = polled["cursor"]
        # an event stream, chunk by chunk as the reply is made; then resumed by Last-Event-ID
        for n, key in enumerate(keys[:4]):
            stream = await EventStream.open(
                port, f"/v1/sessions/{key}/events?cursor={cursors[key]}"
            )
            assert stream.status == 200 and stream.headers["x-accel-buffering"] == "no"
            try:
                said = await http.post(key, {**SAY, "id": 100 + n})
                assert said.status == 200
                events = []
                while not events or events[-1]["event"] != "reply.end":
                    events.append(await stream.next_event())
            finally:
                stream.close()
            ids = [int(e["id"]) for e in events]
            assert ids == list(range(cursors[key], cursors[key] + len(ids)))
            text = "".join(e["data"]["text"] for e in events if e["event"] == "reply.delta")
            assert text == events[-1]["data"]["text"] and text
            resumed = await EventStream.open(
                port, f"/v1/sessions/{key}/events", {"Last-Event-ID": str(ids[-2])}
            )
            try:
                again = await resumed.next_event()
            finally:
                resumed.close()
            assert again is not None and again["id"] == str(ids[-1]) and again == events[-1]
            cursors[key] = ids[-1] + 1
        for key in keys:
            ended = await http.call("DELETE", f"/v1/sessions/{key}")
            assert (ended.status, ended.json()) == (200, {"closed": True})
            after = await http.poll(key)
            assert after.status == 404 and after.json()["message"] == "unknown session"


def worker_folder(pid: int) -> Path:
    """The workers' shared folder, from a worker's environment."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    value = next(v for v in environ if v.startswith(b"NPCBRIDGE_WORKER_DIR="))
    return Path(value.partition(b"=")[2].decode())


def other_address() -> str | None:
    """An address of this machine that is not loopback (the route a UDP socket would take; no
    packet is sent), or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


@pytest.mark.skipif(sys.platform != "linux", reason="reads a worker's /proc environment")
async def test_a_forwarded_request_is_about_its_client_not_the_forwarding_worker(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = serve_env(str(tmp_path / "trust.db"), fake_upstream)
    async with serving(env, "--workers", "2", ready=READY) as served:
        port = port_of(served.url)
        folder = worker_folder(worker_pids(served.log)[0])
        listing = json.loads((folder / "http-1.json").read_text())
        private, secret = int(listing["port"]), listing["secret"]

        async def forwarded(path: str, peer: str | None, sent: str | None) -> Answer:
            headers = {PEER_HEADER: peer} if peer is not None else {}
            if sent is not None:
                headers[SECRET_HEADER] = sent
            return await request(private, "GET", path, headers=headers)

        # the private port answers only the workers' forwards, even from loopback
        assert (await forwarded("/metrics", "127.0.0.1", None)).status == 403
        assert (await forwarded("/metrics", "127.0.0.1", "not-the-secret")).status == 403
        # a remote client's forwarded request is not trusted as the 127.0.0.1 it came from
        refused = await forwarded("/metrics", "203.0.113.7", secret)
        assert refused.status == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert (await forwarded("/healthz", "203.0.113.7", secret)).json() == {"status": "ok"}
        assert (await forwarded("/metrics", "127.0.0.1", secret)).status == 200
        assert "connections" in (await forwarded("/healthz", "127.0.0.1", secret)).json()
        # a client cannot pass for another address by sending the header itself
        assert (
            await request(port, "GET", "/metrics", headers={PEER_HEADER: "127.0.0.1"})
        ).status == 200
        source = other_address()
        if source is None:
            return
        remote = Transport(port, source)
        assert (
            await remote.call("GET", "/metrics", headers={PEER_HEADER: "127.0.0.1"})
        ).status == 401
        # a client from another address: its session works through either worker
        keys = await sessions_on_both_workers(remote, 8)
        for key in keys:
            pong = await remote.post(key, {"type": "ping"})
            assert pong.json() == {"cursor": 2, "messages": [{"type": "pong"}]}


async def test_the_sessions_of_a_worker_that_died_are_unknown(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = serve_env(str(tmp_path / "died.db"), fake_upstream)
    async with serving(env, "--workers", "2", ready=READY) as served:
        http = Transport(port_of(served.url))
        keys = await sessions_on_both_workers(http, 12)
        os.kill(worker_pids(served.log)[0], signal.SIGKILL)

        async def check() -> None:
            for key in keys * 2:  # every key, each on new connections to either worker
                answer = await http.post(key, {"type": "ping"})
                if key.startswith("0."):
                    assert answer.status == 404, answer.body
                    assert answer.json()["message"] == "unknown session"
                else:
                    assert answer.status == 200 and answer.json()["messages"] == [{"type": "pong"}]

        await asyncio.sleep(0.1)
        await check()  # worker 0 gone
        for _ in range(100):
            await asyncio.sleep(0.1)
            if served.log.count("listening on") >= 3:
                break
        await check()  # worker 0 started again, without the old worker's sessions


async def test_a_client_that_hangs_up_ends_its_forwarded_poll_and_stream(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    # a session expires once idle: only when the owner saw every poll and stream end
    config = tmp_path / "npcbridge.toml"
    config.write_text("[server]\nhttp_session_idle_s = 1.5\n")
    env = {**serve_env(str(tmp_path / "hang.db"), fake_upstream), "NPCBRIDGE_CONFIG": str(config)}
    async with serving(env, "--workers", "2", ready=READY) as served:
        port = port_of(served.url)
        http = Transport(port)
        keys = await sessions_on_both_workers(http, 8)
        streams, polls = [], []
        for key in keys:
            stream = await EventStream.open(port, f"/v1/sessions/{key}/events")
            assert stream.status == 200
            streams.append(stream)
            polls.append(asyncio.create_task(http.poll(key, "?cursor=1&wait=30")))
        await asyncio.sleep(0.3)
        for stream in streams:
            stream.close()
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        await asyncio.sleep(3)
        for key in keys:
            expired = await http.poll(key)
            assert expired.status == 404, (key, expired.body)
