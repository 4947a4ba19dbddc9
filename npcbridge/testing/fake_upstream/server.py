"""The fake upstream's aiohttp server: :class:`FakeUpstream` (knobs, lifecycle, scripting,
waiting, recording) and its endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from . import streams
from .audio import FakeAudio
from .directives import default_reply, parse_directives, reply_from_directives
from .errors import base_headers, error_response, validate
from .plan import echoed, make_plan, stream_error_object
from .replies import (
    DEFAULT_MODELS,
    DEFAULT_RATE_LIMIT_HEADERS,
    Reply,
    RequestRecord,
    last_user_text,
)


class FakeUpstream:
    """An in-loop fake OpenAI-compatible server; see the package docstring for the behaviour.

    Every constructor argument is also a mutable attribute of the same name (changes apply to
    the next request).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ttft_ms: float = 0.0,
        tokens_per_s: float = 0.0,
        chars_per_token: int | None = None,
        reply_fn: Callable[[Mapping[str, Any]], str | Reply] | None = None,
        rate_limit_headers: Mapping[str, str] | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        known_models_only: bool = False,
        strict_groq: bool = True,
        api_key: str | None = None,
        slow_tokens_per_s: float = 10.0,
        stall_directive_s: float = 60.0,
        write_interval_ms: float = 10.0,
        record_requests: bool = True,
        system_fingerprint: str = "fp_fake0000",
        stamp_tokens: bool = False,
        echo_headers: bool = False,
    ) -> None:
        """Configure the server; nothing is bound until :meth:`start` (or ``async with``)."""
        self.host = host
        self.port = port
        self.ttft_ms = ttft_ms
        self.tokens_per_s = tokens_per_s
        self.chars_per_token = chars_per_token
        self.reply_fn: Callable[[Mapping[str, Any]], str | Reply] = reply_fn or default_reply
        self.rate_limit_headers: dict[str, str] = dict(
            DEFAULT_RATE_LIMIT_HEADERS if rate_limit_headers is None else rate_limit_headers
        )
        self.models = list(models)
        self.known_models_only = known_models_only
        self.strict_groq = strict_groq
        self.api_key = api_key
        self.slow_tokens_per_s = slow_tokens_per_s
        self.stall_directive_s = stall_directive_s
        self.write_interval_ms = write_interval_ms
        self.record_requests = record_requests
        self.system_fingerprint = system_fingerprint
        self.stamp_tokens = stamp_tokens
        self.echo_headers = echo_headers

        self.requests: list[RequestRecord] = []
        self.completed = 0
        self.disconnects = 0
        self.active_streams = 0
        self.errors = 0
        self.last_usage: dict[str, Any] | None = None

        #: the audio endpoints (``/audio/speech``, ``/audio/transcriptions``) and their knobs
        self.audio = FakeAudio(self)
        self._script: deque[Reply] = deque()
        self._model_scripts: dict[str, deque[Reply]] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL of the server (``http://127.0.0.1:PORT``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (ends with ``/v1``) for ``AsyncOpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    @property
    def groq_base_url(self) -> str:
        """Groq-style base URL (``…/openai/v1``); serves the same endpoints."""
        return f"{self.url}/openai/v1"

    def make_app(self) -> web.Application:
        """Return the aiohttp application (routes only; :meth:`start` runs it)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", "/openai/v1"):
            app.router.add_post(f"{prefix}/chat/completions", self._handle_chat)
            app.router.add_get(f"{prefix}/models", self._handle_models)
        self.audio.routes(app)
        app.router.add_get("/_fake/stats", self._handle_stats)
        app.router.add_post("/_fake/script", self._handle_script)
        app.router.add_post("/_fake/reset", self._handle_reset)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        return app

    async def start(self) -> None:
        """Bind and start serving in the running event loop; sets :attr:`port`."""
        if self._runner is not None:
            raise RuntimeError("FakeUpstream already started")
        self._closing = False
        runner = web.AppRunner(
            self.make_app(),
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.5,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=4096, reuse_address=True)
        await site.start()
        self._runner = runner
        if self.port == 0:
            # the runner's addresses are its sites' socket names: (host, port) for TCP
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving; in-flight requests are cancelled (not counted as disconnects)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        await runner.cleanup()

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- scripting -------------------------------------------------------------------------

    def script(self, *replies: Reply | str, model: str | None = None) -> None:
        """Queue replies (FIFO, one per request); a string is ``Reply(text=...)``.

        With ``model`` the replies are used only for requests for that model (and before the
        general queue).
        """
        queue = self._script if model is None else self._model_scripts.setdefault(model, deque())
        for reply in replies:
            queue.append(Reply(text=reply) if isinstance(reply, str) else reply)

    @property
    def pending_scripts(self) -> int:
        """Number of scripted replies not yet consumed (all queues)."""
        return len(self._script) + sum(len(q) for q in self._model_scripts.values())

    def clear_script(self) -> None:
        """Drop every queued scripted reply."""
        self._script.clear()
        self._model_scripts.clear()

    def reset(self) -> None:
        """Clear scripts, records and counters (not the knobs)."""
        self.clear_script()
        self.requests.clear()
        self.audio.reset()
        self.completed = self.disconnects = self.errors = 0
        self.last_usage = None
        self._notify()

    # -- waiting ---------------------------------------------------------------------------

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` is true (re-checked on every state change).

        Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_disconnect(self, timeout: float = 5.0, count: int = 1) -> int:  # noqa: ASYNC109
        """Wait until ``disconnects >= count``; return :attr:`disconnects`."""
        await self.wait_for(lambda: self.disconnects >= count, timeout)
        return self.disconnects

    async def wait_requests(self, count: int = 1, timeout: float = 5.0) -> list[RequestRecord]:  # noqa: ASYNC109
        """Wait until at least ``count`` chat requests were received; return the records."""
        await self.wait_for(lambda: len(self.requests) >= count, timeout)
        return self.requests

    async def wait_completed(self, count: int = 1, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Wait until ``completed >= count``; return :attr:`completed`."""
        await self.wait_for(lambda: self.completed >= count, timeout)
        return self.completed

    async def wait_active_streams(self, count: int = 1, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Wait until exactly ``count`` streams are active; return :attr:`active_streams`."""
        await self.wait_for(lambda: self.active_streams == count, timeout)
        return self.active_streams

    @property
    def last_request(self) -> RequestRecord | None:
        """The most recent chat request record, if any."""
        return self.requests[-1] if self.requests else None

    # -- request handling ------------------------------------------------------------------

    def _next_reply(self, body: Mapping[str, Any]) -> Reply:
        queue = self._model_scripts.get(body.get("model", ""))
        if queue:
            return queue.popleft()
        if self._script:
            return self._script.popleft()
        _, directives = parse_directives(last_user_text(body.get("messages") or []))
        if directives:
            return reply_from_directives(
                directives,
                slow_tokens_per_s=self.slow_tokens_per_s,
                stall_s=self.stall_directive_s,
            )
        generated = self.reply_fn(body)
        return Reply(text=generated) if isinstance(generated, str) else generated

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        arrival_ns = time.monotonic_ns()
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RequestRecord(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            time=time.time(),
            monotonic=time.monotonic(),
            arrival_ns=arrival_ns,
        )
        if self.record_requests:
            self.requests.append(record)
        self._notify()
        echo = record.headers if self.echo_headers else None
        if body is None and raw:
            record.outcome = "error"
            return error_response(self, 400, "request body is not valid JSON", echo=echo)
        invalid = validate(self, request, body, echo)
        if invalid is not None:
            record.outcome = "error"
            return invalid
        reply = self._next_reply(body)
        plan = make_plan(self, body, reply)
        if reply.echo_headers or echo:
            plan.echo = record.headers
        stream = bool(body.get("stream"))
        if stream and plan.stream_error is not None and plan.echo:
            error_text = str(plan.stream_error.get("message", ""))
            plan.stream_error["message"] = echoed(error_text, plan.echo)
        if plan.groq_error is not None:
            if not stream:
                plan.stream_error = stream_error_object(plan.groq_error)
            elif plan.echo and isinstance(plan.groq_error, dict):
                message = str(plan.groq_error.get("message", ""))
                plan.groq_error["message"] = echoed(message, plan.echo)
            elif plan.echo:
                plan.groq_error = echoed(str(plan.groq_error), plan.echo)
        if stream:
            self.active_streams += 1
            self._notify()
        try:
            if plan.stall_s > 0:
                await asyncio.sleep(plan.stall_s)
            if plan.status != 200:
                record.outcome = "error"
                return error_response(
                    self,
                    plan.status,
                    plan.error_message,
                    model=plan.model,
                    retry_after=plan.retry_after,
                    headers=plan.headers,
                    echo=plan.echo,
                )
            if plan.garbage is not None:
                return await streams.garbage(self, plan, record)
            if stream:
                return await streams.stream(self, request, body, plan, record)
            return await streams.complete(self, request, plan, record)
        except streams.Cut:
            record.outcome = "cut"
            raise asyncio.CancelledError from None
        except (asyncio.CancelledError, ConnectionResetError):
            if record.outcome == "pending" and not self._closing:
                record.outcome = "disconnected"
                self.disconnects += 1
            raise
        finally:
            if stream:
                self.active_streams -= 1
            self._notify()

    async def _handle_models(self, request: web.Request) -> web.Response:
        data = [
            {
                "id": model,
                "object": "model",
                "created": 1693721698,
                "owned_by": "Fake",
                "active": True,
                "context_window": 131072,
                "public_apps": None,
                "max_completion_tokens": 32768,
            }
            for model in self.models
        ]
        return web.json_response(
            {"object": "list", "data": data},
            headers=base_headers(
                self,
            ),
        )

    def stats(self) -> dict[str, Any]:
        """Counters as a JSON-able dict (also served at ``GET /_fake/stats``)."""
        return {
            "requests": len(self.requests),
            "completed": self.completed,
            "disconnects": self.disconnects,
            "active_streams": self.active_streams,
            "errors": self.errors,
            "pending_scripts": self.pending_scripts,
            "last_usage": self.last_usage,
        }

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _handle_script(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            items = data if isinstance(data, list) else [data]
            replies = [Reply.from_dict(item) for item in items]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        self.script(*replies, model=request.query.get("model"))
        return web.json_response({"queued": len(replies), "pending": self.pending_scripts})

    async def _handle_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "error": {
                    "message": "Unknown request URL: "
                    f"{request.method} {request.path}. Please check the URL for typos.",
                    "type": "invalid_request_error",
                    "code": "unknown_url",
                }
            },
            status=404,
        )
