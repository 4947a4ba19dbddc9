"""The thin asyncio + websockets layer: accept, handshake, route, send. No protocol logic."""

from .serve import Server, serve, settle_heap

__all__ = ["Server", "serve", "settle_heap"]
