"""The web console: a page served by the server itself (playground, prompt inspector, live
metrics, memory browser) and the read-only admin endpoints it reads.

The page talks to the server with the game protocol over WebSocket (msgpack); what a game never
needs comes from admin routes under ``/console/api/`` (loopback or ``server.token`` only, never
cross-origin). See docs/console.md.
"""
