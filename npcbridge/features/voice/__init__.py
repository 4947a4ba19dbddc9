"""Voice: NPC replies spoken sentence by sentence, and the player's speech as input.

The feature is a plugin on declared hooks (``handler.py`` declares what it adds); see
docs/voice.md for the pipeline, latency and costs.
"""
