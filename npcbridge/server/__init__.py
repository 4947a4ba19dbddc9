"""The thin asyncio + websockets layer: accept, handshake, route, send. No protocol logic."""

from .serve import Server, serve

__all__ = ["Server", "serve"]
