"""The pipeline and the outbox in process: a scripted provider behind a real App, no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.protocol import State

from npcbridge.app import App
from npcbridge.pipeline.turn import Usage
from npcbridge.protocol import unpack
from npcbridge.providers.base import Reason, UpstreamError
from npcbridge.server.outbox import Outbox
from npcbridge.testing.scripted import Script, ScriptedProvider, say


async def test_a_reply_streams_its_tokens_and_reports_the_scripted_usage(
    scripted: ScriptedProvider, scripted_app: App
) -> None:
    scripted.script(Script(tokens=["Aye, ", "lad. ", "Iron's hot."], usage=Usage(100, 10)))
    said = await say(scripted_app, "blacksmith", "hello")
    assert said.types == ["reply.start", "reply.delta", "reply.delta", "reply.delta", "reply.end"]
    end = said.end
    assert end["text"] == said.deltas == "Aye, lad. Iron's hot."
    assert end["finish"] == "stop" and end["model"] == "llama-3.1-8b-instant"
    assert end["usage"] == {"input_tokens": 100, "output_tokens": 10}
    entry = scripted_app.catalog.resolve("llama-3.1-8b-instant")
    assert end["cost_usd"] == entry.cost_usd(100, 10) > 0
    (request,) = scripted.requests
    assert request.kind == "say" and request.model == "llama-3.1-8b-instant"
    assert "Brom" in request.messages[0]["content"]
    assert request.messages[-1] == {"role": "user", "content": "hello"}


async def test_a_failure_after_a_delta_ends_the_reply_with_its_text_then_the_error(
    scripted: ScriptedProvider, scripted_app: App
) -> None:
    broken = UpstreamError("reset by peer", reason=Reason.CUT)
    scripted.script(Script(tokens=["Aye, ", "lad"], error=broken), "never sent")
    said = await say(scripted_app, "blacksmith", "hello")
    assert said.types == ["reply.start", "reply.delta", "reply.delta", "reply.end", "error"]
    assert said.end["finish"] == "error" and said.end["text"] == "Aye, lad"
    assert said.end["usage"]["estimated"] is True  # no usage arrived: estimated and charged
    assert said.error is not None and said.error["code"] == "upstream_error"
    assert "reset by peer" not in said.error["message"]  # the provider's text stays in the logs
    assert len(scripted.requests) == 1 and scripted.pending == 1  # no retry after a delta


async def test_a_cancelled_turn_closes_the_stream_and_ends_cancelled(
    scripted: ScriptedProvider, scripted_app: App
) -> None:
    scripted.script(Script(tokens=["Let ", "me ", "think..."], delay_s=30))
    task = asyncio.create_task(say(scripted_app, "blacksmith", "hello"))
    await scripted.wait_requests(1)
    task.cancel()
    said = await asyncio.wait_for(task, 5)
    assert said.types == ["reply.start", "reply.end"]
    assert said.end["finish"] == "cancelled" and said.end["text"] == ""
    assert scripted.abandoned == 1


async def test_an_empty_script_answers_like_the_fake_upstream(
    scripted: ScriptedProvider, scripted_app: App
) -> None:
    said = await say(scripted_app, "mage", "where is the tower?")
    assert said.end["text"] == "Well met. You said: where is the tower?."
    assert said.end["usage"]["output_tokens"] == len(said.types) - 2  # one per delta


class _RecordingSocket:
    """The parts of a websockets connection the outbox uses; every send yields once, so
    deltas queue up behind it and coalesce."""

    remote_address = ("127.0.0.1", 1)

    def __init__(self) -> None:
        self.state = State.OPEN
        self.sent: list[bytes] = []

    def write_buffer_size(self) -> int:
        return 0

    def send_now(self, data: bytes) -> bool:
        self.sent.append(data)
        return True

    async def send(self, data: bytes) -> None:
        await asyncio.sleep(0)
        self.sent.append(data)

    async def close(self, code: int, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass


async def test_a_turn_through_the_outbox_arrives_in_order_with_contiguous_seq(
    scripted: ScriptedProvider, scripted_app: App
) -> None:
    tokens = [f"w{i} " for i in range(199)] + ["w199."]
    scripted.script(Script(tokens=tokens))
    ws = _RecordingSocket()
    outbox = Outbox(ws, send_timeout_s=5)  # type: ignore[arg-type]
    await say(scripted_app, "blacksmith", "talk", request_id=7, emit=outbox.emit)
    await outbox.drain()
    frames: list[dict[str, Any]] = [unpack(data) for data in ws.sent]
    await outbox.close()
    assert frames[0]["type"] == "reply.start" and frames[-1]["type"] == "reply.end"
    deltas = frames[1:-1]
    assert all(f["type"] == "reply.delta" and f["id"] == 7 for f in deltas)
    assert [f["seq"] for f in deltas] == list(range(len(deltas)))
    assert len(deltas) < len(tokens) and outbox.coalesced > 0  # queued deltas were merged
    assert "".join(f["text"] for f in deltas) == frames[-1]["text"] == "".join(tokens)
    assert outbox.queued_bytes == 0
