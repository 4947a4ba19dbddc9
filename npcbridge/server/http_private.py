"""A worker's private listener: the requests other workers forward to it (:mod:`.http_forward`).

It listens on 127.0.0.1 at a port the system picks, and answers only requests that carry this
worker's secret (others get 403): those are requests of clients that reached another worker, so
each is answered as if it had come from its client, whose address the forwarding worker sent.
Trust (loopback peer or the server token) and every per-address rule are about that client,
never about the forwarding worker's 127.0.0.1. Forwarded requests are answered by a front whose
transport never forwards again, and they count in no per-address connection cap (the client's
connection counts on the worker it reached).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from dataclasses import replace
from http import HTTPStatus
from typing import TYPE_CHECKING

from ..plugin.http import HttpRequest
from .http import HttpFront
from .http_connection import Answer, Gone, HttpConnection, text_answer
from .http_forward import PEER_HEADER, SECRET_HEADER, Listing, WorkerPlace

if TYPE_CHECKING:
    from asyncio import Server as AsyncioServer

log = logging.getLogger("npcbridge.server")


class PrivateListener:
    """The listener of forwarded requests of one worker (module docstring)."""

    def __init__(self, front: HttpFront, place: WorkerPlace) -> None:
        """``front`` answers the forwarded requests (its transport must not forward)."""
        self.front = front
        self.place = place
        self._secret = secrets.token_urlsafe(32)
        self._server: AsyncioServer | None = None
        self._open: set[HttpConnection] = set()
        #: the port it listens on (once started)
        self.port = 0

    async def start(self) -> None:
        """Listen on 127.0.0.1 and publish the port and the secret in the shared folder."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, "127.0.0.1", 0)
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        self.place.publish(Listing(self.port, self._secret))
        log.debug("worker %d takes forwarded requests on port %d", self.place.index, self.port)

    def _connection(self) -> HttpConnection:
        front = self.front
        connection = HttpConnection(
            self._respond,
            peer="127.0.0.1",
            trust=lambda peer, headers: False,  # decided per request, for the real client
            limits=front.limits,
            server_header=front.context.server_name,
            on_close=self._open.discard,
            refusal=front.refusal,
        )
        self._open.add(connection)
        return connection

    async def _respond(self, request: HttpRequest, gone: Gone) -> Answer:
        sent = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(sent.encode(), self._secret.encode()):
            return text_answer(HTTPStatus.FORBIDDEN, "forbidden")
        peer = request.headers.get(PEER_HEADER, "")
        forward_headers = (SECRET_HEADER, PEER_HEADER)
        headers = {k: v for k, v in request.headers.items() if k not in forward_headers}
        client = replace(
            request, headers=headers, peer=peer, trusted=self.front.trusted(peer, headers)
        )
        return await self.front.respond(client, gone)

    async def close(self) -> None:
        """Withdraw the listing, stop listening and close the forwarded connections."""
        self.place.withdraw()
        if self._server is not None:
            self._server.close()
        for connection in list(self._open):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
