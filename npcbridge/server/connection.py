"""The WebSocket connection object the server creates for each client.

websockets documents ``create_connection`` (a subclass of its ``ServerConnection``) as the way
to customise connection handling, and that connection is also the asyncio protocol of the
socket. :class:`BridgeConnection` keeps the asyncio transport it is given in
``connection_made`` (asyncio's protocol interface) so the outbox can read the write buffer and
abort a client that stops reading, through public asyncio and websockets calls only: websockets
itself offers no public way to abort, and its ``close()`` waits for a buffer that a non-reading
client never drains.
"""

from __future__ import annotations

import asyncio
from typing import cast

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State


class BridgeConnection(ServerConnection):
    """A server connection that can write one message at once and be aborted."""

    _socket: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio calls this when the socket is accepted."""
        super().connection_made(transport)
        self._socket = cast(asyncio.Transport, transport)

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
