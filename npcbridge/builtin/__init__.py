"""Default behaviour, registered as ordinary plugins (each module is one plugin).

A module either defines hook implementations at top level, or a ``Plugin`` class that takes
the server's :class:`npcbridge.plugin.api.PluginAPI` (for plugins that need configuration or
per-server state).
"""
