"""Async Python client for npcbridge (tests, benchmarks, ``npcbridge chat``, Python engines).

async with await Client.connect("ws://127.0.0.1:8765/") as client:
    await client.define_npc("smith", {"name": "Brom", "description": "A blacksmith."})
    reply = await client.say("smith", "p1", "Hello!")
    async for delta in reply:
        print(delta, end="", flush=True)
    print(reply.end["finish"])

With ``reconnect=True`` a dropped connection is dialled again (back-off 0.5 s doubling to 15 s,
with jitter), the NPCs defined with :meth:`Client.define_npc` are defined again, and requests
made meanwhile wait for the new connection. Requests in flight when it dropped fail with
``disconnected`` (the server cancelled them). ``unauthorized`` or ``unsupported_protocol`` on a
reconnect stop the client. The Lua and Godot clients behave the same way.

NPC state (docs/state.md): ``npc_state``, ``state_set``, ``state_nudge``, ``state_watch``,
``state_unwatch``, ``world_event`` (iterate it for the reactions), and
``client.on_state(listener)`` / ``client.known[(npc, player)]`` for what the client has seen.

Which frame ends which request is decided by :class:`~npcbridge.client.routing.Router` (no I/O);
:class:`Client` only pumps frames through it.
"""

from .connection import WELCOME_TIMEOUT_S, Client, Dial, open_session
from .errors import NpcBridgeError
from .routing import Ended, RequestId, Routed, Router
from .state import StateListener, StateView
from .streams import EventReactions, Reply, SceneExchange
from .voice import AudioFrame, SpeechUpload

__all__ = [
    "WELCOME_TIMEOUT_S",
    "AudioFrame",
    "Client",
    "Dial",
    "Ended",
    "EventReactions",
    "NpcBridgeError",
    "Reply",
    "RequestId",
    "Routed",
    "Router",
    "SceneExchange",
    "StateListener",
    "StateView",
    "SpeechUpload",
    "open_session",
]
