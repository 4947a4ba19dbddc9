"""The single-answer requests of the client: memory and game features, built on ``request``."""

from __future__ import annotations

from typing import Any


class Requests:
    """Mixed into :class:`~npcbridge.client.Client`: one method per single-answer message."""

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its single answer; raise on ``error``."""
        raise NotImplementedError

    async def ping(self) -> dict[str, Any]:
        """Round-trip a ``ping``."""
        return await self.request({"type": "ping"})

    async def memory_add(
        self, npc: str, text: str, *, player: str | None = None, importance: int = 5
    ) -> None:
        """Store a fact the NPC should remember (about ``player``, or the world without it)."""
        frame: dict[str, Any] = {"type": "memory.add", "npc": npc, "text": text}
        frame["importance"] = importance
        if player is not None:
            frame["player"] = player
        await self.request(frame)

    async def memory_forget(self, player: str, *, npc: str | None = None) -> int:
        """Erase a player's data (for one NPC, or everywhere); return how many records went."""
        frame: dict[str, Any] = {"type": "memory.forget", "player": player}
        if npc is not None:
            frame["npc"] = npc
        return int((await self.request(frame)).get("removed", 0))

    async def memory_query(
        self, npc: str, player: str, text: str | None = None, *, limit: int = 10
    ) -> list[dict[str, Any]]:
        """What the NPC would recall for this player (and line), best first."""
        frame: dict[str, Any] = {"type": "memory.query", "npc": npc, "player": player}
        frame["limit"] = limit
        if text is not None:
            frame["text"] = text
        return list((await self.request(frame))["items"])

    async def generate_quest(
        self, theme: str, difficulty: str = "medium", **options: Any
    ) -> dict[str, Any]:
        """A validated quest (``options``: ``npc``, ``context``, ``fields``)."""
        frame = {"type": "quest.generate", "theme": theme, "difficulty": difficulty, **options}
        return dict((await self.request(frame))["quest"])

    async def generate_barks(
        self, npcs: list[str | dict[str, Any]], **options: Any
    ) -> list[dict[str, Any]]:
        """One ambient line per NPC, in order; each result has ``text`` or ``error``."""
        entries = [{"npc": n} if isinstance(n, str) else n for n in npcs]
        frame = {"type": "barks.generate", "npcs": entries, **options}
        return list((await self.request(frame))["results"])

    async def scene_start(self, scene: str, npcs: list[str], player: str, **options: Any) -> None:
        """Open (or replace) a group scene (``options``: ``context``, ``max_replies``, ...)."""
        await self.request(
            {"type": "scene.start", "scene": scene, "npcs": npcs, "player": player, **options}
        )

    async def scene_update(self, kind: str, scene: str, **fields: Any) -> None:
        """``scene.add``, ``scene.remove``, ``scene.interrupt`` or ``scene.end`` (kind without
        the ``scene.`` prefix), e.g. ``await client.scene_update("add", "tavern", npc="bard")``."""
        await self.request({"type": f"scene.{kind}", "scene": scene, **fields})

    async def npc_state(
        self, npc: str, player: str | None = None, op: str = "get", **fields: Any
    ) -> dict[str, Any]:
        """The ``state`` answer of one ``npc.state`` (``op``: get, set, nudge, watch, unwatch;
        ``fields``: ``values``, ``watch``, ``names``)."""
        frame: dict[str, Any] = {"type": "npc.state", "npc": npc, "op": op, **fields}
        if player is not None:
            frame["player"] = player
        return await self.request(frame)

    async def state_set(self, npc: str, player: str | None = None, **values: Any) -> dict[str, Any]:
        """Set state values (``mood``, ``intensity``, ``trust``, ``affection``,
        ``familiarity``); the state after it."""
        return await self.npc_state(npc, player, "set", values=values)

    async def state_nudge(
        self, npc: str, player: str | None = None, **amounts: Any
    ) -> dict[str, Any]:
        """Add amounts to state values (a ``mood`` with an ``intensity`` is felt); the state
        after it."""
        return await self.npc_state(npc, player, "nudge", values=amounts)

    async def state_watch(
        self, npc: str, player: str | None, watches: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Watch thresholds (``{"key", "below"|"above", "name"}``): a ``state`` frame comes
        whenever a change crosses one (see :meth:`on_state`)."""
        return await self.npc_state(npc, player, "watch", watch=watches)

    async def state_unwatch(
        self, npc: str, player: str | None = None, names: list[str] | None = None
    ) -> dict[str, Any]:
        """Stop watching ``names`` of the pair (all of them without ``names``)."""
        fields: dict[str, Any] = {} if names is None else {"names": names}
        return await self.npc_state(npc, player, "unwatch", **fields)
