"""Voice as a builtin plugin: replies spoken sentence by sentence and the player's speech as
input (:mod:`npcbridge.features.voice`; its ``handler`` module declares what it adds)."""

from __future__ import annotations

from ..features.voice.handler import VoiceFeature as Plugin

__all__ = ["Plugin"]
