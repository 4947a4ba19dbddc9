"""npcbridge: streaming LLM dialogue for game NPCs over WebSocket + msgpack.

Plugin authors write ``@npcbridge.hookimpl``; see ``docs/plugins.md``.
"""

from .plugin.specs import hookimpl, hookspec

__version__ = "0.1.0"
SERVER_NAME = f"npcbridge/{__version__}"

__all__ = ["SERVER_NAME", "__version__", "hookimpl", "hookspec"]
