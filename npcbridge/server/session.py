"""One client connection over WebSocket: the asyncio pump around the connection rules.

What every session does (the rules' frames and events, turns, handlers) is
:class:`~.session_core.SessionCore`; a WebSocket session reads each message from the socket,
feeds it to the machine with the time, and queues the frames on its :class:`~.outbox.Outbox`.
A closed connection cancels its turns (and so their upstream requests).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from ..protocol import CloseCode
from ..protocol.connection import Phase
from .connection import BridgeConnection
from .outbox import Outbox
from .session_core import SessionCore

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("npcbridge.server")


class Session(SessionCore):
    """State of one WebSocket connection."""

    def __init__(self, context: ServerContext, ws: BridgeConnection) -> None:
        super().__init__(context)
        self.ws = ws
        self.outbox = Outbox(ws, self.config.send_timeout_s, self.config.send_queue_bytes)

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame for this client."""
        self.outbox.emit(frame)

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Serve the connection until it closes."""
        peer = self.ws.remote_address
        try:
            if not await self._handshake():
                return
            log.info("connection session=%s peer=%s client=%r open", self.id, peer, self.client)
            async for data in self.ws:
                self.machine.receive_data(data, self.loop.time())
                await self._pump()
        except ConnectionClosed:
            pass
        finally:
            await self._shutdown()
            log.info(
                "connection session=%s peer=%s closed code=%s",
                self.id,
                peer,
                self.ws.close_code,
            )

    async def _handshake(self) -> bool:
        machine = self.machine
        try:
            data = await asyncio.wait_for(self.ws.recv(), machine.hello_deadline - self.loop.time())
        except TimeoutError:
            # the timer may fire a clock tick early: the deadline has passed all the same
            machine.check_deadline(max(self.loop.time(), machine.hello_deadline))
        else:
            machine.receive_data(data, self.loop.time())
        await self._pump()
        return machine.phase is Phase.OPEN

    async def _shutdown(self) -> None:
        await self._cancel_tasks()
        await self.outbox.close()

    async def _close(self, code: CloseCode, reason: str) -> None:
        await self.outbox.drain()
        await self.ws.close(code, reason)
