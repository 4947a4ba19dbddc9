"""The fake upstream's pacing and its command line: time to first token, tokens per second,
stamped tokens, the slow and trickle directives, and ``python -m npcbridge.testing.fake_upstream``
(the base URL line, SIGTERM, ``--stamp-words``)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

from fake_upstream_helpers import MODEL, client_for, collect, user
from openai import AsyncOpenAI

from npcbridge.testing.fake_upstream import (
    STAMP_PLACEHOLDER,
    FakeUpstream,
    parse_stamps,
    stamped_reply,
)


async def test_ttft_knob(fake_upstream: FakeUpstream) -> None:
    fake_upstream.ttft_ms = 200
    client = client_for(fake_upstream)
    started = time.monotonic()
    stream = await client.chat.completions.create(model=MODEL, messages=user("hi"), stream=True)
    first_content = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first_content = time.monotonic() - started
            break
    await stream.close()
    assert first_content is not None
    assert 0.2 <= first_content < 1.5
    await client.close()


async def test_tokens_per_s_pacing(fake_upstream: FakeUpstream) -> None:
    fake_upstream.tokens_per_s = 100
    started = time.monotonic()
    out = await collect(fake_upstream, "[[words:30]]")
    elapsed = time.monotonic() - started
    assert len(out["content"].split()) == 30
    assert 0.28 <= elapsed < 2.0  # 30 tokens at 100/s, first one immediate


async def test_stamp_tokens_marks_arrival_and_send_time(fake_upstream: FakeUpstream) -> None:
    fake_upstream.tokens_per_s = 100
    fake_upstream.ttft_ms = 30
    fake_upstream.reply_fn = stamped_reply(5)
    fake_upstream.stamp_tokens = True
    before = time.monotonic_ns()
    out = await collect(fake_upstream, "hi")
    after = time.monotonic_ns()
    stamps = parse_stamps(out["content"])
    assert len(stamps) == 5 and STAMP_PLACEHOLDER not in out["content"]
    arrivals = {arrival for arrival, _ in stamps}
    assert len(arrivals) == 1 and before < arrivals.pop() < stamps[0][1]
    sent = [s for _, s in stamps]
    assert sent == sorted(sent) and sent[-1] < after
    assert stamps[0][1] - stamps[0][0] >= 30_000_000  # the first token waited ttft_ms
    assert sent[-1] - sent[0] >= 30_000_000  # paced at 100 tokens/s
    # without the knob the placeholder is sent as it is
    fake_upstream.stamp_tokens = False
    assert parse_stamps((await collect(fake_upstream, "hi"))["content"]) == [(0, 0)] * 5


async def test_slow_directive(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    stream = await client.chat.completions.create(
        model=MODEL, messages=user("[[slow]]"), stream=True
    )
    started = time.monotonic()
    words = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            words += 1
            if words == 4:
                break
    elapsed = time.monotonic() - started
    await stream.close()
    assert 0.25 <= elapsed < 2.0  # 10 tokens/s
    await fake_upstream.wait_disconnect(timeout=2)
    await client.close()


async def test_trickle_directive_paces_a_long_reply(fake_upstream: FakeUpstream) -> None:
    client = client_for(fake_upstream)
    stream = await client.chat.completions.create(
        model=MODEL, messages=user("[[trickle:0.2]]"), stream=True
    )
    arrivals: list[float] = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
            if len(arrivals) == 4:
                break
    await stream.close()
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert all(0.15 < gap < 0.5 for gap in gaps), gaps
    await fake_upstream.wait_disconnect()
    assert fake_upstream.requests[0].outcome == "disconnected"
    await client.close()


def test_cli_prints_base_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "npcbridge.testing.fake_upstream", "--port", "0", "--ttft-ms", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["base_url"].startswith("http://127.0.0.1:") and line["base_url"].endswith("/v1")

        async def check() -> str:
            client = AsyncOpenAI(base_url=line["base_url"], api_key="test", max_retries=0)
            result = await client.chat.completions.create(model=MODEL, messages=user("cli"))
            await client.close()
            return result.choices[0].message.content or ""

        assert asyncio.run(check()) == "Well met. You said: cli."
        assert line["pid"] == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_stamp_words_serves_stamped_replies() -> None:
    """What the benchmarks run: ``--stamp-words N`` replies are N stamped tokens."""
    argv = [sys.executable, "-m", "npcbridge.testing.fake_upstream", "--stamp-words", "3"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())

        async def check() -> str:
            client = AsyncOpenAI(base_url=line["base_url"], api_key="test", max_retries=0)
            result = await client.chat.completions.create(model=MODEL, messages=user("x"))
            await client.close()
            return result.choices[0].message.content or ""

        text = asyncio.run(check())
        assert len(text.split()) == 3 and STAMP_PLACEHOLDER in text  # stamps only on streams
        stream_text = asyncio.run(collect_cli(line["base_url"]))
        stamps = parse_stamps(stream_text)
        assert len(stamps) == 3 and all(arrival > 0 and sent >= arrival for arrival, sent in stamps)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


async def collect_cli(base_url: str) -> str:
    """One streamed completion from the fake at ``base_url`` (a CLI process), as text."""
    client = AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)
    stream = await client.chat.completions.create(model=MODEL, messages=user("x"), stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await client.close()
    return text
