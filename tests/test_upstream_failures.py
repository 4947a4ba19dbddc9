"""How upstream failures reach a client: garbage 200s, trickling streams, open breakers, the
connect timeout, and an upstream that echoes the API key (in error bodies, response headers and
in-stream errors) against a canary key, at DEBUG level."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gateway_helpers import ALONE, SMALL, bridge_with
from websockets.asyncio.client import ClientConnection, connect

from npcbridge.client import NpcBridgeError
from npcbridge.gateway.deadline import StreamDeadline
from npcbridge.process import configure_logging, redact
from npcbridge.protocol import encode, unpack
from npcbridge.providers.openai_compat import OpenAICompatProvider
from npcbridge.testing.fake_upstream import GARBAGE_BODIES, FakeUpstream, Reply

CANARY = "gsk_CANARY7d1f0e9a4b3c2d1e0f9a8b7c6d5e4f3a2b1c"


# ------------------------------------------------------------------ garbage 200s


@pytest.mark.parametrize("kind", sorted(GARBAGE_BODIES))
async def test_garbage_200_is_a_retried_upstream_error_and_nothing_is_remembered(
    fake_upstream: FakeUpstream, tmp_path: Path, kind: str
) -> None:
    async with await bridge_with(fake_upstream, tmp_path, breaker__failure_threshold=10) as b:
        fake_upstream.script(*[Reply(garbage=kind)] * 3)  # retry.max_attempts = 3
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            reply = await client.say("smith", "p1", "Do you sell swords?")
            with pytest.raises(NpcBridgeError) as info:
                await reply.text()
            assert info.value.code == "upstream_error" and info.value.retryable is True
            assert reply.end is None  # no empty reply: the error alone
            assert [r.outcome for r in fake_upstream.requests] == ["garbage"] * 3
            assert b.app.gateway.breakers.get(SMALL).failures == 3
            # the next turn's prompt holds no exchange of the failed one
            again = await client.say("smith", "p1", "[[reply:Aye.]]")
            assert await again.text() == "Aye."
        messages = fake_upstream.requests[-1].messages
        assert [m["role"] for m in messages if m["role"] != "system"] == ["user"]
        assert "swords" not in str(messages)


async def test_garbage_200_then_a_good_reply_succeeds(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(fake_upstream, tmp_path) as b:
        fake_upstream.script(Reply(garbage="html"))
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            assert await (await client.say("smith", "p1", "[[reply:Aye.]]")).text() == "Aye."
        assert [r.outcome for r in fake_upstream.requests] == ["garbage", "completed"]
        body = b.app.gateway.metrics.render()
        line = f'npcbridge_upstream_requests_total{{model="{SMALL}",outcome="bad_response"}} 1.0'
        assert line in body.decode()


# ------------------------------------------------------------------ turn deadline


async def test_trickling_stream_ends_at_the_turn_deadline(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(fake_upstream, tmp_path, gateway__turn_deadline_s=1.0) as b:
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            started = asyncio.get_running_loop().time()
            reply = await client.say("smith", "p1", "[[trickle:0.1]]")
            with pytest.raises(NpcBridgeError) as info:
                await reply.text()
            elapsed = asyncio.get_running_loop().time() - started
        assert info.value.code == "upstream_timeout"
        assert "deadline" in info.value.message
        assert reply.end is not None and reply.end["finish"] == "error"
        assert 3 <= len(reply.end["text"].split()) <= 12  # what trickled in before the deadline
        assert 0.9 < elapsed < 3
        await fake_upstream.wait_disconnect()  # the upstream request was closed
        assert len(fake_upstream.requests) == 1


async def test_turn_deadline_bounds_retries_before_the_first_token(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with await bridge_with(
        fake_upstream,
        tmp_path,
        gateway__turn_deadline_s=0.6,
        upstream__first_token_timeout_s=0.4,
        retry__max_attempts=5,
    ) as b:
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            with pytest.raises(NpcBridgeError) as info:
                await (await client.say("smith", "p1", "[[stall:5]]")).text()
        assert info.value.code == "upstream_timeout"
        assert len(fake_upstream.requests) == 2  # the second attempt was cut by the deadline


# ------------------------------------------------------------------ breakers keep the cause


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        (Reply(status=503), "the upstream answered HTTP 503"),
        (Reply(stall_s=5), "the upstream did not answer in time"),
    ],
)
async def test_open_breakers_report_the_failure_that_opened_them(
    fake_upstream: FakeUpstream, tmp_path: Path, reply: Reply, cause: str
) -> None:
    async with await bridge_with(
        fake_upstream,
        tmp_path,
        retry__max_attempts=1,
        breaker__failure_threshold=2,
        upstream__first_token_timeout_s=0.3,
    ) as b:
        fake_upstream.script(reply, reply)
        async with await b.client() as client:
            await client.define_npc("smith", ALONE)
            for text in ("one", "two", "three"):
                with pytest.raises(NpcBridgeError) as info:
                    await (await client.say("smith", "p1", text)).text()
        assert len(fake_upstream.requests) == 2  # the third turn found the breaker open
        assert info.value.code == "upstream_error" and info.value.retryable is True
        assert info.value.message.startswith(f"{cause}; "), info.value.message
        assert info.value.message.endswith("retry later")


# ------------------------------------------------------------------ connect timeout


def test_connect_timeout_reaches_the_http_client() -> None:
    provider = OpenAICompatProvider(
        base_url="http://127.0.0.1:9/v1", api_key="k", timeout_s=30.0, connect_timeout_s=1.5
    )
    assert provider.timeout.sock_connect == 1.5 and provider.timeout.sock_read == 30.0
    asyncio.run(provider.aclose())


async def test_connect_timeout_is_configured(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    async with await bridge_with(fake_upstream, tmp_path, upstream__connect_timeout_s=0.25) as b:
        provider = b.app.providers["openai"]
        assert isinstance(provider, OpenAICompatProvider)
        assert provider.timeout.sock_connect == 0.25


# ------------------------------------------------------------------ the API key stays home


HELLO = {"type": "hello", "protocol": 1, "client": "test"}


async def raw_frames(ws: ClientConnection, seen: list[bytes], until: str, request_id: str) -> None:
    """Receive frames into ``seen`` until an ``until`` frame for ``request_id`` arrived."""
    while True:
        data = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(data, bytes)
        seen.append(data)
        frame = unpack(data)
        if frame.get("type") == until and frame.get("id") == request_id:
            return


#: (directive text, reply scripted ahead of it, the frame that ends the turn)
HOSTILE: list[tuple[str, Reply | None, str]] = [
    ("server error", Reply(status=500), "error"),
    ("bad request", Reply(status=400), "error"),
    ("unauthorised", Reply(status=401), "error"),
    ("rate limited", Reply(status=429), "error"),
    ("stream error first", Reply(text="", stream_error="boom"), "error"),
    ("stream error late", Reply(text="Hello there friend", stream_error="boom"), "error"),
    ("groq error", Reply(text="Hello there friend", groq_error="stopped"), "error"),
    ("groq error first", Reply(text="", groq_error="stopped"), "error"),
    ("garbage", Reply(garbage="html"), "error"),
    ("a good reply", None, "reply.end"),
]


async def test_canary_key_reaches_no_client_frame_and_no_log_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    configure_logging("debug")  # what `npcbridge serve` does: the redaction filter on the handlers
    async with FakeUpstream(echo_headers=True) as fake:
        async with await bridge_with(
            fake,
            tmp_path,
            upstream__api_key=CANARY,
            retry__max_attempts=1,
            breaker__enabled=False,
            ratelimit__enabled=False,
        ) as b:
            seen: list[bytes] = []
            async with connect(b.url, max_size=None) as ws:
                await ws.send(encode(HELLO))
                seen.append(await ws.recv())  # type: ignore[arg-type]
                define = {"type": "npc.define", "id": "d", "npc": "smith", "persona": ALONE}
                await ws.send(encode(define))
                await raw_frames(ws, seen, "ok", "d")
                for index, (label, reply, until) in enumerate(HOSTILE):
                    if reply is not None:
                        fake.script(reply)
                    say = {"type": "say", "id": f"t{index}", "npc": "smith", "player": "p1"}
                    await ws.send(encode({**say, "text": label}))
                    await raw_frames(ws, seen, until, f"t{index}")
            # the upstream did echo the key: every request carried it
            assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in fake.requests)
            assert len(fake.requests) == len(HOSTILE)
    frames = [unpack(data) for data in seen]
    errors = [f for f in frames if f.get("type") == "error"]
    assert len(errors) == len(HOSTILE) - 1
    for data, frame in zip(seen, frames, strict=True):
        assert CANARY.encode() not in data and "CANARY" not in repr(frame), frame
        assert "request headers" not in repr(frame) and "boom" not in repr(frame), frame
    # every line was captured (DEBUG on), the turns' own among them, and none carries the key
    # (aiohttp logs no request lines or headers; the redaction filter covers a library that does)
    assert sum(r.name == "npcbridge.pipeline.turn" for r in caplog.records) >= len(HOSTILE)
    for record in caplog.records:
        assert "CANARY" not in record.getMessage(), record.getMessage()
        assert "CANARY" not in (record.exc_text or ""), record.exc_text
    assert "CANARY" not in caplog.text


def test_http_libraries_log_requests_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    # at info the turn's own line is the record of an upstream request; at debug the HTTP
    # libraries' request lines come back
    libraries = [logging.getLogger(name) for name in ("httpx", "httpx2")]
    try:
        caplog.set_level(logging.INFO)
        configure_logging("info")
        for logger in libraries:
            assert not logger.isEnabledFor(logging.INFO)
            assert logger.isEnabledFor(logging.WARNING)
        caplog.set_level(logging.DEBUG)
        configure_logging("debug")
        for logger in libraries:
            assert logger.isEnabledFor(logging.DEBUG)
    finally:
        for logger in libraries:
            logger.setLevel(logging.NOTSET)


def test_logged_exception_text_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    configure_logging("debug")
    log = logging.getLogger("npcbridge.test")
    try:
        raise RuntimeError(f'upstream said {{"Authorization": "Bearer {CANARY}"}}')
    except RuntimeError:
        log.exception("turn failed, headers %s", {"authorization": "Bearer sk-abcdefghijklmnopqr"})
    record = caplog.records[-1]
    assert "RuntimeError" in (record.exc_text or "")
    assert "CANARY" not in (record.exc_text or "") and "CANARY" not in caplog.text
    assert "sk-abcdefghij" not in record.getMessage() and "[redacted]" in record.getMessage()


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer s3cr3t-value",
        '{"Authorization": "Bearer s3cr3t-value", "a": 1}',
        "[(b'x-echo-authorization', b'Bearer s3cr3t-value'), (b'k', b'v')]",
        "{'authorization': 's3cr3t-value'}",
        "proxy-authorization=Basic s3cr3t-value",
        "api-key: s3cr3t-value",
        "token gsk_s3cr3tvalue0123 here",
        "AUTHORIZATION: BEARER s3cr3t-value",
        "X-Api-Key=s3cr3t-value",
        "key GSK_S3CR3TVALUE0123 here",
        "key SK-s3cr3t-value-0123456789 here",
    ],
)
def test_redact_finds_credentials_in_every_shape(text: str) -> None:
    clean = redact(text)
    assert "s3cr3t" not in clean.casefold() and "[redacted]" in clean, clean
    assert redact("the authorization of the guild") == "the authorization of the guild"
    # a line without a credential comes back as it was; the upper-case shapes above are the
    # ones a case-sensitive shortcut past the pattern would let through
    line = "turn npc=smith player=p1 model=llama-3.1-8b-instant finish=stop cost_usd=0.000010"
    assert redact(line) == line


async def _ticks(gap: float) -> AsyncIterator[int]:
    n = 0
    while True:
        await asyncio.sleep(gap)
        n += 1
        yield n


async def test_stream_deadline_interrupts_a_read_and_leaves_other_cancels_alone() -> None:
    loop = asyncio.get_running_loop()
    deadline = StreamDeadline(loop.time() + 0.15)
    ticks = _ticks(0.05).__aiter__()
    got = []
    with pytest.raises(TimeoutError):
        while True:
            got.append(await deadline.next(ticks))
    assert 1 <= len(got) <= 3 and loop.time() < deadline.when + 0.05
    with pytest.raises(TimeoutError):  # a read after the instant fails at once
        await deadline.next(_ticks(10).__aiter__())
    deadline.close()

    async def reader() -> None:
        slow = StreamDeadline(loop.time() + 10)
        try:
            await slow.next(_ticks(10).__aiter__())
        finally:
            slow.close()

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
