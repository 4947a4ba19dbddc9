"""The connection object the server creates for each TCP connection.

websockets documents ``create_connection`` (a subclass of its ``ServerConnection``) as the way
to customise connection handling, and that connection is also the asyncio protocol of the
socket. :class:`BridgeConnection` does two things with that:

* It reads the first request head before websockets sees it. A WebSocket upgrade (an
  ``Upgrade: websocket`` header) goes to websockets as it came, and every later read goes
  straight through (one check per read). Any other request is plain HTTP, which websockets
  cannot serve (it refuses requests with a body): the socket is handed over to an
  :class:`~.http_connection.HttpConnection` (``HttpFront.adopt``), and websockets' handshake
  task for it ends as cancelled, so it neither logs, waits for its open timeout, nor aborts the
  socket it no longer owns.
* It keeps the asyncio transport it is given in ``connection_made`` (asyncio's protocol
  interface) so the outbox can read the write buffer and abort a client that stops reading,
  through public asyncio and websockets calls only: websockets itself offers no public way to
  abort, and its ``close()`` waits for a buffer that a non-reading client never drains.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar, cast

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State

from .http_connection import MAX_HEAD_BYTES

if TYPE_CHECKING:
    from .http import HttpFront


def is_websocket_upgrade(head: bytes) -> bool:
    """True when a request head (request line and headers) has ``Upgrade: websocket``."""
    for line in head.splitlines()[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def end_of_head(data: bytes | bytearray) -> int:
    """Where the request head in ``data`` ends (-1 while incomplete)."""
    end = data.find(b"\r\n\r\n")
    return end if end >= 0 else data.find(b"\n\n")


class BridgeConnection(ServerConnection):
    """A server connection that can write one message at once and be aborted, and that hands
    plain-HTTP requests to :attr:`http_front`."""

    #: where plain-HTTP connections go (set on the class :func:`connection_class` makes)
    http_front: ClassVar[HttpFront | None] = None
    _socket: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio calls this when the socket is accepted."""
        super().connection_made(transport)
        self._socket = cast(asyncio.Transport, transport)
        #: the bytes of the first request head while it is being read; None once decided
        self._head: bytearray | None = bytearray()
        #: True: a WebSocket connection; False: handed to the HTTP front
        self._websocket: asyncio.Future[bool] = self.loop.create_future()

    def data_received(self, data: bytes) -> None:
        """Read the first request head, then let websockets have every byte (or hand off)."""
        head = self._head
        if head is None:
            super().data_received(data)
            return
        head += data
        end = end_of_head(head)
        if end < 0 and len(head) <= MAX_HEAD_BYTES:
            return
        self._head = None
        received = bytes(head)
        front = self.http_front
        if front is None or end < 0 or is_websocket_upgrade(received[:end]):
            self._decide(True)
            # from now on asyncio calls websockets' own data_received directly (an instance
            # attribute comes before the class's method), so later reads cost what they did
            vars(self)["data_received"] = super().data_received
            super().data_received(received)
            return
        self._decide(False)
        assert self._socket is not None
        front.adopt(self._socket, received)

    def eof_received(self) -> None:
        """The peer closed its side: what was read so far goes to websockets first."""
        if self._head is not None:
            received, self._head = bytes(self._head), None
            self._decide(True)
            if received:
                super().data_received(received)
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket closed (before a head was read, websockets finds out as before)."""
        self._head = None
        self._decide(True)
        super().connection_lost(exc)

    def _decide(self, websocket: bool) -> None:
        if not self._websocket.done():
            self._websocket.set_result(websocket)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        """websockets' opening handshake, once the first head shows a WebSocket upgrade."""
        if not await self._websocket:
            # handed to the HTTP front: end websockets' task for this socket as cancelled (its
            # handler lets a cancellation through without logging or aborting the socket)
            raise asyncio.CancelledError
        await super().handshake(*args, **kwargs)

    def write_buffer_size(self) -> int:
        """Bytes written to the socket and not yet taken by the network."""
        return 0 if self._socket is None else self._socket.get_write_buffer_size()

    def send_now(self, data: bytes) -> bool:
        """Write one binary message now, without waiting for the buffer to drain (websockets'
        ``broadcast`` to this one connection); False when the connection is not open or the
        write failed."""
        if self.state is not State.OPEN:
            return False
        try:
            broadcast([self], data, raise_exceptions=True)
        except Exception:  # the connection is going away: the caller will find out
            return False
        return True

    def abort(self) -> None:
        """Drop the TCP connection at once, discarding what is buffered."""
        if self._socket is not None:
            self._socket.abort()


def connection_class(front: HttpFront) -> type[BridgeConnection]:
    """The ``create_connection`` class of one server: plain HTTP goes to ``front``."""

    class ServerBridgeConnection(BridgeConnection):
        http_front = front

    return ServerBridgeConnection
