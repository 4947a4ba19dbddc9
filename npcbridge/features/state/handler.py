"""The state feature, declared in one place: it serves ``npc.state`` (answered with ``state``)
and ``world.event`` (answered with ``ok``, after any reactions), is announced as ``state`` and is
configured by ``[extra.state]`` (:class:`.settings.StateSettings`). The per-turn work (the
prompt, the update after each turn, the judgement) is in :mod:`.plugin`."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from ...protocol.errors import ErrorCode, ProtocolError
from ...protocol.messages import Message, NpcState, StateSpec, WorldEvent
from ..connection import Connection
from ..feature import RegisterHandler
from .events import WorldEvents
from .model import RELATIONSHIP_KEYS, changed, view
from .repository import StateRepository
from .settings import StateSettings
from .watches import ConnectionWatches, Watch, WatchRegistry

if TYPE_CHECKING:
    from ...plugin.api import PluginAPI


#: watches one connection may keep per (npc, player)
MAX_WATCHES = 32


def state_spec(api: PluginAPI, session: Connection, npc: str, request_id: Any) -> StateSpec:
    """The ``persona.state`` of an NPC the connection can talk to; ``unknown_npc`` for an
    unknown NPC, ``bad_request`` for one that keeps no state."""
    try:
        persona = api.persona(npc, session.npcs)
    except ProtocolError as exc:
        exc.request_id = request_id
        raise
    if persona.state is None:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            "field 'npc': this NPC keeps no state (its persona declares no 'state')",
            request_id=request_id,
        )
    return persona.state


class StateFeature:
    """``npc.state`` → ``state``; ``world.event`` → reactions, then ``ok``."""

    name = "state"

    def __init__(self, api: PluginAPI, settings: StateSettings) -> None:
        self.api = api
        self.settings = settings
        self.repo = StateRepository(api, settings)
        self.watches = WatchRegistry()
        self.repo.listeners.append(self.watches.changed)
        self.events = WorldEvents(api, settings, self.repo)

    def register_handlers(self, register: RegisterHandler) -> None:
        """``npc.state`` and ``world.event`` (which tracks its own cancellable work)."""
        register("npc.state", self.on_state)
        register("world.event", self.on_event)

    async def on_event(self, session: Connection, msg: Message) -> None:
        """``world.event``: see :mod:`.events`."""
        assert isinstance(msg, WorldEvent)
        await self.events.on_event(session, msg)

    def connection_watches(self, session: Connection) -> ConnectionWatches:
        """The connection's watches, registered to hear about changes."""
        watches = session.plugin_state(ConnectionWatches)
        if watches.send_ref is None:
            watches.send_ref = weakref.WeakMethod(session.send)
            self.watches.add(watches)
        return watches

    async def on_state(self, session: Connection, msg: Message) -> None:
        """``npc.state``: get, set, nudge, watch or unwatch; the answer is the state now."""
        assert isinstance(msg, NpcState)
        spec = state_spec(self.api, session, msg.npc, msg.id)
        frame: dict[str, Any] = {"type": "state", "id": msg.id, "npc": msg.npc}
        if msg.op in ("watch", "unwatch"):
            frame["watching"] = self._watch(session, msg)
        try:
            if msg.op in ("set", "nudge"):
                values = await self._change(msg, spec)
            else:
                values = await self.repo.load(msg.npc, spec, msg.player)
        except self.repo.unavailable_errors():
            raise ProtocolError(
                ErrorCode.INTERNAL,
                "the state store is unavailable; try again",
                request_id=msg.id,
                retryable=True,
            ) from None
        if msg.player:
            frame["player"] = msg.player
        frame.update(view(values), reason=msg.op)
        session.send(frame)

    async def _change(self, msg: NpcState, spec: StateSpec) -> dict[str, Any]:
        if msg.values is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"field 'values': required for {msg.op}", request_id=msg.id
            )
        change = msg.values.model_dump(exclude_none=True)
        if not msg.player and any(key in change for key in RELATIONSHIP_KEYS):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "field 'values': relationship values need 'player'",
                request_id=msg.id,
            )
        add = msg.op == "nudge"
        return await self.repo.change(
            msg.npc, spec, msg.player, lambda v: changed(v, change, add=add), msg.op
        )

    def _watch(self, session: Connection, msg: NpcState) -> list[str]:
        """Add or drop the connection's watches of the pair; the names watched now."""
        watches = self.connection_watches(session)
        pair = (msg.npc, msg.player)
        if msg.op == "watch":
            if not msg.watch:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, "field 'watch': required for watch", request_id=msg.id
                )
            try:
                added = [Watch.from_message(w, msg.player) for w in msg.watch]
            except ProtocolError as exc:
                exc.request_id = msg.id
                raise
            named = {**watches.pairs.get(pair, {}), **{w.name: w for w in added}}
            if len(named) > MAX_WATCHES:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    f"field 'watch': at most {MAX_WATCHES} watches per npc and player",
                    request_id=msg.id,
                )
            watches.pairs[pair] = named
        elif msg.names is None:
            watches.pairs.pop(pair, None)
        else:
            named = watches.pairs.get(pair, {})
            for name in msg.names:
                named.pop(name, None)
            if not named:
                watches.pairs.pop(pair, None)
        return sorted(watches.pairs.get(pair, {}))
