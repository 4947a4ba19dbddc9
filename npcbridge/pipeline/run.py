"""One NPC turn, start to end. The only place that calls the turn hooks, in this order:

persona → recall → select model → before-request → provider stream (per-delta transforms,
``reply.delta`` frames, text-sent) → flush → stream-end → post-process → ``reply.end`` →
after-turn.

Failure rules (protocol v1): a turn that fails before any delta was sent answers ``error`` only;
after deltas it answers ``reply.end`` with finish "error" and the partial text, then ``error``.
A cancelled turn answers ``reply.end`` with finish "cancelled" and the text so far.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..gateway.catalog import ModelEntry
from ..gateway.core import Gateway
from ..gateway.errors import upstream_protocol_error
from ..plugin.guard import HookFailures, checked
from ..plugin.manager import call_impl
from ..protocol.errors import ProtocolError
from ..protocol.frames import error_frame, internal_error
from ..providers.base import ProviderRequest, StreamDone, TextDelta, ToolCallDelta, UpstreamError
from . import actions
from .turn import PromptPart, Turn, TurnResult, Usage

if TYPE_CHECKING:
    from ..gateway.catalog import Catalog
    from ..plugin.manager import PluginManager

log = logging.getLogger("npcbridge.pipeline.turn")


class StopReply(Exception):  # noqa: N818 - a signal, not an error
    """Raise from ``npcbridge_transform_delta`` (or ``npcbridge_flush_delta``) to end the reply.

    The upstream request is closed, the piece being transformed is dropped except ``spoken``
    (the part of it that may still be said; a piece can hold several tokens), text sent before
    stays, held-back text is flushed, and the turn finishes with ``finish`` ("stop" when the NPC
    has said enough, "filtered" when moderation stopped it). No action is dispatched from a
    filtered reply.
    """

    def __init__(self, finish: str = "stop", reason: str = "", spoken: str = "") -> None:
        super().__init__(reason or finish)
        self.finish = finish
        self.reason = reason
        self.spoken = spoken


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class Pipeline:
    """Runs the turns of one server: its hooks, its gateway, its model catalog."""

    def __init__(
        self, hooks: PluginManager, gateway: Gateway, catalog: Catalog, default_model: str
    ) -> None:
        self.hooks = hooks
        self.gateway = gateway
        self.catalog = catalog
        #: the model a turn gets when no ``npcbridge_select_model`` hook picks one
        self.default_model = default_model
        self.failures = HookFailures()

    async def select_model(self, turn: Turn) -> ModelEntry:
        """The model ``npcbridge_select_model`` picks for ``turn`` (else the default model)."""
        hook = "npcbridge_select_model"
        name = None
        for impl in self.hooks.impls(hook):
            name = checked(
                hook,
                await self.hooks.call_one(impl, hook, turn=turn, catalog=self.catalog),
                plugin=impl.plugin_name,
            )
            if name is not None:
                turn.model_plugin = impl.plugin_name
                break
        return self.catalog.entry(name or self.default_model)

    async def prepare(self, turn: Turn) -> tuple[ModelEntry, ProviderRequest]:
        """Build the upstream request: persona, recall, model, before-request hooks."""
        pm = self.hooks
        parts: list[str] = []
        hook = "npcbridge_persona"
        for impl in pm.impls(hook):
            answer = await pm.call_one(impl, hook, turn=turn)
            if answer is None:
                continue
            checked(hook, answer, plugin=impl.plugin_name)
            for part in [answer] if isinstance(answer, str) else answer:
                parts.append(part)
                turn.prompt_parts.append(PromptPart(impl.plugin_name, part))
        turn.system_parts = parts
        recalled: list[dict[str, Any]] = []
        for messages in checked(
            "npcbridge_recall", await pm.call("npcbridge_recall", turn=turn), each=True
        ):
            recalled.extend(messages)
        turn.model = await self.select_model(turn)
        if turn.persona.actions and not turn.tools:
            turn.tools = actions.tools_for(turn.persona.actions)
        system = {"role": "system", "content": "\n\n".join(turn.system_parts)}
        turn.messages = [system, *recalled, {"role": "user", "content": turn.text}]
        hook = "npcbridge_before_request"
        for impl in pm.impls(hook):
            before = len(turn.system_parts)
            await pm.call_one(impl, hook, turn=turn)
            for part in turn.system_parts[before:]:
                turn.prompt_parts.append(PromptPart(impl.plugin_name, part, "before_request"))
        # a part appended to turn.system_parts there is a note for this request only
        if turn.messages and turn.messages[0] is system:
            system["content"] = "\n\n".join(turn.system_parts)
        # before-request hooks may edit turn.text (what goes upstream; the stored history keeps
        # turn.player_text); keep the last user message in step with it
        if turn.messages and turn.messages[-1].get("role") == "user":
            turn.messages[-1] = {**turn.messages[-1], "content": turn.text}
        request = ProviderRequest(
            model=turn.model.id,
            messages=turn.messages,
            max_tokens=turn.max_tokens,
            temperature=turn.temperature,
            tools=turn.tools or None,
            params=dict(turn.params),
            persona_name=turn.persona.name,
            kind=turn.kind,
        )
        return turn.model, request

    async def run(self, turn: Turn) -> TurnResult | None:
        """Run one turn, emitting its frames through ``turn.emit``; never raises for the turn's
        own failures (they become frames). Returns the result, or None when the turn was refused
        before reaching the upstream."""
        try:
            model, request = await self.prepare(turn)
        except ProtocolError as exc:
            exc.request_id = turn.request_id
            if turn.kind == "say" and exc.refused is None:
                exc.refused = "say"  # no frame of this reply was sent: the say is refused
            turn.emit(error_frame(exc))
            return None
        except Exception as exc:  # a hook failed: the request still gets its answer
            self.failures.report(turn.request_id, turn.npc, "preparation", exc)
            turn.emit(error_frame(internal_error(turn.request_id)))
            return None
        except asyncio.CancelledError:
            _uncancel()
            model_id = turn.model.id if turn.model else self.default_model
            result = self.result(turn, model_id, "", "cancelled", None, 0.0, None, "", None)
            turn.emit(await self.reply_end(turn, result))
            return None
        turn.emit(
            {"type": "reply.start", "id": turn.request_id, "npc": turn.npc, "model": model.id}
        )
        return await self.stream(turn, model, request)

    async def stream(self, turn: Turn, model: ModelEntry, request: ProviderRequest) -> TurnResult:
        """Stream from the gateway, send deltas, finish the turn."""
        pm = self.hooks
        transform = pm.caller("npcbridge_transform_delta")
        sent_hook = pm.caller("npcbridge_text_sent") if pm.impls("npcbridge_text_sent") else None
        streamed: list[str] = []
        tool_calls = actions.ToolCallCollector()
        usage: Usage | None = None
        finish = "stop"
        error: ProtocolError | None = None
        queue_ms = _ms(time.perf_counter() - turn.started_at)
        first_token_at: float | None = None
        model_id = model.id

        def send(text: str) -> None:
            if text:
                streamed.append(text)
                if turn.stream:
                    turn.emit({"type": "reply.delta", "id": turn.request_id, "text": text})
                if sent_hook is not None:
                    try:
                        sent_hook(turn=turn, text=text)
                    except Exception as exc:  # a watcher of the text never breaks the reply
                        self.failures.report(turn.request_id, turn.npc, "text sent", exc)

        events = self.gateway.stream(turn, model, request)
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    send(transform(turn=turn, text=event.text))
                elif isinstance(event, ToolCallDelta):
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    tool_calls.add(event)
                elif isinstance(event, StreamDone):
                    finish = "length" if event.finish == "length" else "stop"
                    usage = event.usage
                    model_id = turn.served_model or model_id
        except StopReply as stop:
            finish = stop.finish
            send(stop.spoken)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        except asyncio.CancelledError as exc:
            _uncancel()
            finish, turn.cancel_reason = "cancelled", _reason(exc)
        except UpstreamError as exc:
            finish, error = "error", upstream_protocol_error(exc, turn.request_id)
        except ProtocolError as exc:
            exc.request_id = turn.request_id
            finish, error = "error", exc
        except Exception as exc:
            self.failures.report(turn.request_id, turn.npc, "streaming", exc)
            finish, error = "error", internal_error(turn.request_id)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:  # a hook failed mid-stream: close the upstream request now
                await aclose()

        # the gateway reports the time spent waiting (rate-limit queue, retry back-off)
        queue_ms = turn.queue_ms if turn.queue_ms is not None else queue_ms
        try:
            send(self.flush(turn))
        except StopReply as stop:  # the held-back end of the reply was refused
            finish = stop.finish
            send(stop.spoken)
        except Exception as exc:
            self.failures.report(turn.request_id, turn.npc, "flushing held-back text", exc)
            finish, error = "error", error or internal_error(turn.request_id)
        if finish not in ("error", "filtered") and tool_calls.calls:
            actions.dispatch(turn, tool_calls)

        streamed_text = "".join(streamed)
        if error is not None and not streamed and not turn.actions:
            # failed before anything reached the player: an error frame alone
            turn.emit(error_frame(error))
            return self.result(
                turn, model_id, "", "error", usage, queue_ms, first_token_at, streamed_text, error
            )

        finish = await self.stream_end(turn, finish)
        try:
            # the plugin manager checks each answer of the chain (a str)
            text = await pm.call(
                "npcbridge_post_process", turn=turn, text=streamed_text, finish=finish
            )
        except Exception as exc:  # the player heard the deltas: end with them, then the error
            self.failures.report(turn.request_id, turn.npc, "post-processing", exc)
            text, finish, error = streamed_text, "error", internal_error(turn.request_id)
        result = self.result(
            turn, model_id, text, finish, usage, queue_ms, first_token_at, streamed_text, error
        )
        turn.emit(await self.reply_end(turn, result))
        if error is not None:
            turn.emit(error_frame(error))
        return result

    async def stream_end(self, turn: Turn, finish: str) -> str:
        """Run ``npcbridge_stream_end``; return the turn's finish ("cancelled" when a cancel
        came while a plugin finished its work)."""
        try:
            await self.hooks.call("npcbridge_stream_end", turn=turn, finish=finish)
        except asyncio.CancelledError as exc:
            _uncancel()
            turn.cancel_reason = _reason(exc)
            return "cancelled"
        except Exception as exc:
            self.failures.report(turn.request_id, turn.npc, "the end of the stream", exc)
        return finish

    def flush(self, turn: Turn) -> str:
        """Collect text the delta transforms held back; text one transform releases still passes
        through the transforms after it."""
        pm = self.hooks
        flushers = {impl.plugin: impl for impl in pm.impls("npcbridge_flush_delta")}
        pending = ""
        hook = "npcbridge_transform_delta"
        for impl in pm.impls(hook):
            if pending:
                out = call_impl(impl, turn=turn, text=pending)
                if out is not None:
                    pending = checked(hook, out, plugin=impl.plugin_name)
            flusher = flushers.pop(impl.plugin, None)
            if flusher is not None:
                pending += call_impl(flusher, turn=turn) or ""
        for flusher in flushers.values():
            pending += call_impl(flusher, turn=turn) or ""
        return pending

    def result(
        self,
        turn: Turn,
        model_id: str,
        text: str,
        finish: str,
        usage: Usage | None,
        queue_ms: float,
        first_token_at: float | None,
        streamed_text: str,
        error: ProtocolError | None,
    ) -> TurnResult:
        """The :class:`TurnResult` of a turn ending now: cost from the model's prices, time to
        first token and total time from ``turn.started_at`` (``first_token_at``: perf_counter
        of the first delta, None when there was none)."""
        now = time.perf_counter()
        if usage is None and turn.usage is not None:  # not reported: what the gateway counted
            usage = turn.usage
            model_id = turn.served_model or model_id
        usage = usage or Usage()
        entry = self.gateway.price(turn, self.catalog.entry(model_id))
        return TurnResult(
            text=text,
            finish=finish,
            model=model_id,
            usage=usage,
            cost_usd=entry.cost_usd(usage.input_tokens, usage.output_tokens),
            queue_ms=queue_ms,
            ttft_ms=_ms(first_token_at - turn.started_at) if first_token_at else 0.0,
            total_ms=_ms(now - turn.started_at),
            streamed_text=streamed_text,
            error_code=str(error.code) if error else None,
            cached=turn.cached,
        )

    async def reply_end(self, turn: Turn, result: TurnResult) -> dict[str, Any]:
        """:meth:`end_frame` with the fields ``npcbridge_reply_fields`` hooks add (a field the
        frame already has is kept; the clash is logged). A plugin whose hook raises or answers
        something that is not a map of encodable values adds nothing; the failure is
        reported and the reply ends as it would without that plugin."""
        frame = self.end_frame(turn, result)
        hook = "npcbridge_reply_fields"
        for impl in self.hooks.impls(hook):
            try:
                answer = await self.hooks.call_one(impl, hook, turn=turn, result=result)
                fields = checked(hook, answer, plugin=impl.plugin_name)
            except Exception as exc:
                self.failures.report(turn.request_id, turn.npc, "reply.end fields", exc)
                continue
            for key, value in (fields or {}).items():
                if key in frame:
                    log.warning("npcbridge_reply_fields: field %r is taken; not added", key)
                else:
                    frame[key] = value
        return frame

    @staticmethod
    def end_frame(turn: Turn, result: TurnResult) -> dict[str, Any]:
        """The ``reply.end`` frame for a finished turn."""
        frame: dict[str, Any] = {
            "type": "reply.end",
            "id": turn.request_id,
            "npc": turn.npc,
            "text": result.text,
            "finish": result.finish,
            "model": result.model,
            "usage": {
                "input_tokens": result.usage.input_tokens,
                "output_tokens": result.usage.output_tokens,
                **({"estimated": True} if result.usage.estimated else {}),
            },
            "cost_usd": float(result.cost_usd),
            "timing": {
                "queue_ms": float(result.queue_ms),
                "ttft_ms": float(result.ttft_ms),
                "total_ms": float(result.total_ms),
            },
        }
        if result.text != result.streamed_text:
            frame["rewritten"] = True
        if turn.emotes:
            frame["emotes"] = list(turn.emotes)
        if turn.actions:
            frame["actions"] = list(turn.actions)
        if turn.rejected_actions:
            frame["rejected_actions"] = list(turn.rejected_actions)
        if result.cached:
            frame["cached"] = True
        return frame

    async def finish(self, turn: Turn, result: TurnResult) -> None:
        """Run the after-turn hooks and log the turn (errors in plugins are logged, not raised)."""
        try:
            await self.hooks.call("npcbridge_after_turn", turn=turn, result=result)
        except Exception:
            log.exception("after-turn hook failed for npc %s", turn.npc)
        log.info(
            "turn npc=%s player=%s model=%s finish=%s ttft_ms=%.1f total_ms=%.1f "
            "tokens_in=%d tokens_out=%d cost_usd=%.6f",
            turn.npc,
            turn.player,
            result.model,
            result.finish,
            result.ttft_ms,
            result.total_ms,
            result.usage.input_tokens,
            result.usage.output_tokens,
            result.cost_usd,
        )


def _reason(exc: asyncio.CancelledError) -> str | None:
    """The message a cancellation carries (``task.cancel(msg)``), e.g. ``barge_in``."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) else None


def _uncancel() -> None:
    """The turn handles its own cancellation; later awaits in this task must run normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
