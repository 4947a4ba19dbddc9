"""``npcbridge chat``: talk to an NPC from a terminal.

The prompt is read in the main thread, so Ctrl-C ends the chat at once (also while a reply
streams); the client runs on an event loop in a background thread. Every failure is one line:
a URL that cannot work, a port serving something that is not npcbridge, a refusal; a dropped
connection is dialled again (the NPC defined again) and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import urlsplit

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)

from .. import __version__
from .connection import Client
from .errors import NpcBridgeError

T = TypeVar("T")

#: how often the chat looks whether the connection dropped or came back
_WATCH_S = 0.2


class ChatError(Exception):
    """A failure the chat reports in one line before it exits."""


def persona_from_description(description: str, name: str | None = None) -> dict[str, Any]:
    """The persona ``--persona`` defines: the description as written, and a name to go by.

    Without ``name``, the name comes from the description's first phrase ("A gruff
    blacksmith." -> "the gruff blacksmith"): the prompt then reads "You are the gruff
    blacksmith." instead of naming the character after its NPC id."""
    if not name:
        first = re.split(r"[.,;:!?\n]", description.strip(), maxsplit=1)[0].strip()
        name = re.sub(r"^(a|an)\s+", "the ", first, flags=re.IGNORECASE)[:60] or "the stranger"
    return {"name": name, "description": description}


def check_url(url: str) -> None:
    """Refuse, in one line, a URL that can never reach an npcbridge server."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("ws", "wss"):
        got = f"'{scheme}://'" if scheme and "://" in url else "no scheme"
        raise ChatError(f"--url must start with ws:// or wss:// (got {got}): {url}")


def _connect_failure(url: str, exc: BaseException) -> ChatError:
    """One readable line for a failed first connect."""
    if isinstance(exc, InvalidURI):
        return ChatError(f"--url is not a valid WebSocket URL: {url}")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return ChatError(f"{url} is not an npcbridge server (HTTP {status} to the upgrade)")
    if isinstance(exc, ConnectionClosed):
        return ChatError(f"{url} closed the connection before answering hello")
    if isinstance(exc, NpcBridgeError) and exc.code == "bad_handshake":
        return ChatError(f"{url} is not an npcbridge server (no welcome to hello)")
    if isinstance(exc, (InvalidHandshake, WebSocketException)):
        return ChatError(f"{url} is not an npcbridge server (no WebSocket handshake)")
    if isinstance(exc, NpcBridgeError):
        return ChatError(f"{url} refused the connection: {exc.code}: {exc.message}")
    if isinstance(exc, TimeoutError):
        return ChatError(f"{url} did not answer in time")
    if isinstance(exc, OSError):
        return ChatError(f"cannot connect to {url}: {exc.strerror or exc}")
    return ChatError(f"cannot connect to {url}: {type(exc).__name__}")


class _Loop:
    """An event loop in a daemon thread; :meth:`run` waits for a coroutine from the caller."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop; Ctrl-C in the caller cancels it."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop (its thread ends)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=2)


async def _open(url: str, token: str | None) -> Client:
    try:
        return await Client.connect(
            url, token=token, client=f"npcbridge-chat/{__version__}", reconnect=True
        )
    except (OSError, TimeoutError, WebSocketException, NpcBridgeError) as exc:
        raise _connect_failure(url, exc) from None


async def _watch(client: Client, url: str) -> None:
    """Say when the connection drops and when it is back."""
    was = client.connected
    while True:
        await asyncio.sleep(_WATCH_S)
        now = client.connected
        if now != was:
            note = "reconnected" if now else f"connection lost; reconnecting to {url}"
            print(f"\n[{note}]", file=sys.stderr, flush=True)
            was = now


async def _turn(client: Client, npc: str, player: str, line: str) -> None:
    print(f"{npc}> ", end="", flush=True)
    try:
        reply = await client.say(npc, player, line)
        async for delta in reply:
            print(delta, end="", flush=True)
        print()
        for emote in reply.emotes:
            print(f"  *{emote}*")
    except NpcBridgeError as exc:
        print()
        if client.stopped is not None:
            raise ChatError(
                f"the server refused the reconnect: {exc.code}: {exc.message}"
            ) from None
        if exc.code == "disconnected":
            print("[the connection dropped during the reply]", file=sys.stderr, flush=True)
        else:
            print(f"[error {exc.code}] {exc.message}", file=sys.stderr, flush=True)


def chat(
    url: str,
    npc: str,
    player: str,
    token: str | None,
    persona: str | None,
    name: str | None = None,
) -> int:
    """Run the chat until end of input or Ctrl-C; return the exit status."""
    runner: _Loop | None = None
    client: Client | None = None
    watch: Future[None] | None = None
    close_s = 2.0
    try:
        check_url(url)
        runner = _Loop()
        client = runner.run(_open(url, token))
        models = ", ".join(client.welcome.get("models", []))
        print(f"connected to {client.welcome.get('server')} (models: {models})")
        if persona:
            runner.run(client.define_npc(npc, persona_from_description(persona, name)))
        watch = asyncio.run_coroutine_threadsafe(_watch(client, url), runner.loop)
        while True:
            try:
                line = input("you> ")
            except EOFError:
                print()
                return 0
            if line.strip():
                runner.run(_turn(client, npc, player, line))
    except KeyboardInterrupt:
        print()
        close_s = 0.5  # the player wants out: do not wait long for the close handshake
        return 0
    except (ChatError, NpcBridgeError) as exc:
        text = str(exc) if isinstance(exc, ChatError) else f"{exc.code}: {exc.message}"
        print(f"npcbridge chat: {text}", file=sys.stderr)
        return 1
    finally:
        if watch is not None:
            watch.cancel()
        if runner is not None:
            if client is not None:
                with contextlib.suppress(BaseException):  # leaving anyway
                    runner.run(client.close(), timeout=close_s)
            runner.stop()
