"""A fake OpenAI-compatible (Groq-flavoured) chat-completions server for tests and benchmarks.

This is the *one* fake upstream every npcbridge suite uses. It is a real aiohttp HTTP server on
127.0.0.1 (port 0 by default) that answers like Groq's OpenAI-compatible API, so the real
``openai`` SDK (and therefore npcbridge's upstream client) can talk to it unchanged.

Usage::

    async with FakeUpstream(ttft_ms=50, tokens_per_s=750) as fake:
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")
        fake.script(Reply(text="Hello there."), Reply(status=429, retry_after=2))
        ...
        assert fake.disconnects == 0

Command line (benchmarks, non-Python suites)::

    python -m npcbridge.testing.fake_upstream --port 0 --ttft-ms 50 --tokens-per-s 750
    python -m npcbridge.testing.fake_upstream --ttft-ms 50 --tokens-per-s 750 --stamp-words 40

prints one JSON line ``{"base_url": "http://127.0.0.1:PORT/v1", "port": PORT, ...}`` to stdout
and serves until SIGTERM/SIGINT. Run ``--help`` for every flag.

Knobs (constructor keyword arguments, also mutable attributes; changes apply to new requests)
---------------------------------------------------------------------------------------------
``host`` (``"127.0.0.1"``), ``port`` (0 = any free port; the bound port after ``start()``),
``ttft_ms`` (0), ``tokens_per_s`` (0 = unpaced), ``chars_per_token`` (``None`` = word tokens),
``reply_fn`` (``body -> str | Reply``; default :func:`default_reply`), ``rate_limit_headers``
(default :data:`DEFAULT_RATE_LIMIT_HEADERS`; ``{}`` for none), ``models`` (listed by
``/v1/models``), ``known_models_only`` (404 for other models; False), ``strict_groq`` (Groq's
400s, below; True), ``api_key`` (require ``Authorization: Bearer KEY``; ``None`` = accept any),
``slow_tokens_per_s`` (pace of ``[[slow]]``; 10), ``stall_directive_s`` (length of
``[[stall]]``; 60), ``write_interval_ms`` (minimum gap between writes of a paced stream; 10),
``record_requests`` (keep :class:`RequestRecord` objects; True, the CLI default is off),
``system_fingerprint``, ``stamp_tokens`` (False; see *Time stamps* below), ``echo_headers``
(False; see *Hostile upstreams* below).

Endpoints
---------
``POST /v1/chat/completions`` and ``POST /openai/v1/chat/completions``
    Non-streaming (``chat.completion`` JSON) and streaming (``stream: true``) replies.
``GET /v1/models`` and ``GET /openai/v1/models``
    The model list (``models`` knob).
``GET /_fake/stats``
    Counters as JSON (``requests``, ``completed``, ``disconnects``, ``active_streams``,
    ``errors``, ``last_usage``) so non-Python suites can assert on the upstream side.
``POST /_fake/script``
    Body: one reply object or a list of them, with the fields of :class:`Reply` (``tool_calls``
    as ``[{"name", "arguments", "id"?}]``); optional ``?model=NAME``. Appends to the script.
``POST /_fake/reset``
    Clears the script, the records and the counters.
``POST /v1/audio/speech``, ``POST /v1/audio/transcriptions`` (and under ``/openai/v1``)
    Text to speech (deterministic WAV whose length follows the text) and speech to text
    (scripted transcripts), with latency and failure knobs and recorded requests:
    ``fake.audio``, :mod:`.audio` (``POST /_fake/audio`` scripts them over HTTP).

Streaming wire format (as Groq/OpenAI)
--------------------------------------
Server-sent events, each ``data: <chunk json>\\n\\n``; every chunk has ``id`` (``chatcmpl-…``,
the same for the whole stream), ``object: "chat.completion.chunk"``, ``created`` (unix seconds),
``model`` (the requested model), ``system_fingerprint`` and ``choices``.

1. ``delta: {"role": "assistant", "content": ""}`` plus ``x_groq: {"id": "req_…"}``;
   sent as soon as the response headers are sent.
2. After ``ttft_ms``: one chunk per token, ``delta: {"content": TOKEN}``.
3. Tool calls (if any), OpenAI style: first ``delta.tool_calls[0]`` with ``index``, ``id``,
   ``type: "function"`` and ``function: {"name", "arguments": ""}``, then the arguments in
   pieces (``function: {"arguments": PIECE}``, same ``index``).
4. Final chunk: ``delta: {}``, ``finish_reason`` (``"stop"``; ``"length"`` when ``max_tokens`` /
   ``max_completion_tokens`` cut the reply; ``"tool_calls"`` when the reply has tool calls), and
   Groq's ``x_groq: {"id", "usage": {prompt_tokens, completion_tokens, total_tokens, queue_time,
   prompt_time, completion_time, total_time}}``.
5. Only when the request has ``stream_options: {"include_usage": true}``: an OpenAI-style chunk
   with ``choices: []`` and top-level ``usage``.
6. ``data: [DONE]``.

Tokens, pacing and usage
------------------------
* A *token* is one word with the whitespace that follows it (regex ``\\s*\\S+\\s*``; leading
  whitespace sticks to the first word), so joining the tokens gives back the exact text. With
  ``chars_per_token=N`` a token is instead a slice of N characters.
* ``ttft_ms``: delay between the role chunk and the first content chunk.
* ``tokens_per_s``: pace of content/tool chunks (0 = as fast as possible, all in one write).
  Chunks that are due are written together, at most one write per ``write_interval_ms``
  (default 10 ms), so thousands of concurrent streams stay cheap; the average pace is exact.
* Time stamps (benchmarks): with ``stamp_tokens=True``, every :data:`STAMP_PLACEHOLDER` in a
  streamed chunk is replaced, as the chunk is written to the socket, by
  ``T<arrival_ns>.<sent_ns>`` (the same width): when the request reached the server and when
  that chunk was written, ``CLOCK_MONOTONIC`` nanoseconds, which every process on the machine
  shares. A client then separates the upstream's own time from the time spent outside it, per
  request and per token (:func:`parse_stamps`).
* ``prompt_tokens`` = (total characters of the text of all ``messages[].content``) // 4
  + 1 per message (text parts of list contents count; see :func:`count_prompt_tokens`).
* ``completion_tokens`` = number of content chunks sent + number of tool-call argument pieces.
* ``total_tokens`` = the sum. ``Reply(usage={...})`` overrides the counts.
* ``fake.last_usage`` is the usage dict last reported (streaming or not); each
  :class:`RequestRecord` also carries the ``usage`` reported for it (``None`` if none was).

Choosing the reply (first match wins)
-------------------------------------
1. The per-model script queue for the request's model (``fake.script(..., model="x")``).
2. The general script queue (``fake.script(Reply(...))``), FIFO, one reply per request.
3. Directives in the last user message (below).
4. ``reply_fn(body)`` (the default generator): with no directive the reply is
   ``"Well met. You said: <last user text, directives removed, first 20 words>."``
   (``"Well met, traveller."`` when that text is empty). If the request asks for
   ``response_format`` ``json_object`` the content is ``{"reply": <that sentence>}``; for
   ``json_schema`` a minimal instance of the schema (strings = the sentence, numbers 0,
   booleans false, arrays empty, enums their first value).

``max_tokens`` / ``max_completion_tokens`` always apply: the content is cut to that many tokens,
tool calls are dropped and ``finish_reason`` is ``"length"``.

Directives (anywhere in the text of the last user message)
----------------------------------------------------------
``[[reply:TEXT]]``        Reply exactly TEXT (up to the closing ``]]``).
``[[words:N]]``           Reply with N deterministic words.
``[[slow]]``              A 200-word reply paced at 10 tokens/s (``slow_tokens_per_s``).
``[[status:CODE]]``       Answer with that HTTP status and Groq's JSON error body;
                          ``[[status:429]]`` also sends ``retry-after: 1``.
``[[cut:N]]``             Close the TCP connection abruptly after N content chunks (no final
                          chunk, no ``[DONE]``); a non-streaming request is cut before replying.
``[[stall]]``             Wait ``stall_directive_s`` (default 60 s) before sending anything (not
                          even headers). ``[[stall:S]]`` waits S seconds.
``[[tool:NAME:{json}]]``  A tool call to NAME with that JSON object as arguments, preceded by a
                          short spoken text (``"As you wish."``, or the ``[[reply:…]]`` text).
                          Several ``[[tool:…]]`` directives give parallel tool calls.
``[[json:{...}]]``        Content is that JSON value (re-serialised with ``json.dumps``).
``[[stream_error]]``      After the content, send Groq's in-stream error event
                          ``data: {"error": {"message": "tool call validation failed", "type":
                          "invalid_request_error", "code": "tool_use_failed", ...}}`` and end the
                          stream (no ``[DONE]``); ``[[stream_error:MESSAGE]]`` sets the message.
``[[ttft:MS]]``           Time to first token for this reply, in milliseconds.
``[[tps:N]]``             Tokens per second for this reply.
``[[trickle:S]]``         A 1,000-word reply, one token every S seconds (default 1): a stream
                          that never stops for long but takes for ever to end.
``[[garbage:KIND]]``      Answer 200 with a body that is not a completion (:data:`GARBAGE_BODIES`:
                          ``invalid_json``, ``html``, ``empty``, ``binary_sse``,
                          ``sse_invalid_json``), streaming request or not.
``[[echo_headers]]``      This reply echoes the request's headers (see *Hostile upstreams*).
``[[groq_error:MESSAGE]]`` After the content, stop the stream Groq's way: a chunk whose
                          ``x_groq.error`` is MESSAGE (a string), then the end of the body.
                          ``[[groq_error:400]]`` / ``[[groq_error:400:MESSAGE]]``: the error is
                          an object ``{"message", "type", "status_code": 400}``.

Directives combine (e.g. ``[[reply:Hi there friend]] [[cut:2]]``).

Groq behaviour emulated (``strict_groq=True``, the default)
-----------------------------------------------------------
400 ``invalid_request_error`` for ``logprobs``, ``logit_bias``, ``top_logprobs``,
``messages[].name`` and ``n`` other than 1, as Groq does. Always: 400 for a body that is not JSON
or lacks ``model``/``messages``; 401 when ``api_key`` is set and the bearer token differs; 404
``model_not_found`` when ``known_models_only`` is set and the model is not in ``models``.

Error bodies are ``{"error": {"message", "type", "code"}}``; 429 uses type ``"tokens"`` and code
``"rate_limit_exceeded"``. ``rate_limit_headers`` (``x-ratelimit-*``, Groq duration format such
as ``"2m59.56s"``) are added to every chat/models response, errors included; pass ``{}`` to send
none. ``retry-after`` is sent only when the reply has ``retry_after``.

Hostile upstreams
-----------------
Some proxies and servers echo the request's headers, ``Authorization`` included, back to the
client. With ``echo_headers=True`` (every reply) or ``Reply(echo_headers=True)`` /
``[[echo_headers]]`` (one reply) the fake does that everywhere it can: each request header comes
back as a response header ``x-echo-<name>`` (errors, streams, completions, garbage), error bodies'
``message`` ends with ``request headers: {json}``, and so does the ``message`` of an in-stream
error event (``stream_error``, ``groq_error``). ``Reply(garbage=KIND)`` answers 200 with one of
:data:`GARBAGE_BODIES` (content type and bytes), after ``stall_s`` and ``ttft_ms``; its record's
outcome is ``"garbage"``.

Recording
---------
``fake.requests``        list of :class:`RequestRecord` (``body``, ``headers`` lower-cased,
                         ``path``, ``method``, ``time``, ``monotonic``, ``usage``, ``outcome``).
``fake.completed``       replies sent in full (streams that reached ``[DONE]``).
``fake.disconnects``     requests whose client went away before the end (stream or stall).
``fake.active_streams``  streaming responses currently in progress.
``fake.errors``          error-status responses and in-stream errors sent.
``await fake.wait_disconnect(timeout, count=1)`` / ``wait_requests`` / ``wait_completed`` /
``wait_active_streams`` / ``wait_for(predicate, timeout)``.

A disconnect is only seen while the reply is still in progress: for cancellation tests make the
reply outlast the cancel (``[[slow]]``, ``[[stall]]``, ``tokens_per_s``); an unpaced short reply
is usually complete (and counted in ``completed``) before the client can close.

Modules: :mod:`.replies` (the data types), :mod:`.directives` (player-text directives and the
default reply), :mod:`.plan` (what one request will get), :mod:`.errors` (Groq's error answers
and request checks), :mod:`.streams` (completion, SSE and garbage bodies, time stamps),
:mod:`.server` (:class:`FakeUpstream`), :mod:`.audio` (the audio endpoints) and :mod:`.cli`
(the command line).
"""

from .cli import main
from .directives import default_reply, parse_directives
from .replies import (
    DEFAULT_MODELS,
    DEFAULT_RATE_LIMIT_HEADERS,
    GARBAGE_BODIES,
    Reply,
    RequestRecord,
    ToolCall,
    count_prompt_tokens,
    tokenize,
)
from .server import FakeUpstream
from .streams import STAMP_PLACEHOLDER, parse_stamps, stamped_reply

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_RATE_LIMIT_HEADERS",
    "GARBAGE_BODIES",
    "STAMP_PLACEHOLDER",
    "FakeUpstream",
    "Reply",
    "RequestRecord",
    "ToolCall",
    "count_prompt_tokens",
    "default_reply",
    "main",
    "parse_directives",
    "parse_stamps",
    "stamped_reply",
    "tokenize",
]
