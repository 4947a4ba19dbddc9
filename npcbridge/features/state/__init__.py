"""NPC state: moods that fade, relationships per player, world events (docs/state.md)."""
