"""What an NPC answering in a scene is told: who else is there, and the transcript so far."""

from __future__ import annotations

from ...pipeline.turn import Turn
from .scene import scene_of


def scene_prompt(turn: Turn) -> str | None:
    """The system-prompt part that tells the NPC who else is in the scene."""
    scene = scene_of(turn)
    if scene is None:
        return None
    others = [p.name for npc, p in scene.personas.items() if npc != turn.npc]
    present = ", ".join([*others, f"{scene.player_name} (the player)"])
    return (
        f"You are in a group conversation ({scene.name}) with: {present}. Their lines are "
        f"given as 'Name: text'. Reply only with what {turn.persona.name} says next, without "
        "a name label, and never write lines for anyone else. You may address others by name."
    )


def scene_messages(turn: Turn) -> list[dict[str, str]]:
    """The scene's transcript before the line being answered, as chat messages."""
    scene = scene_of(turn)
    if scene is None:
        return []
    lines = list(scene.transcript)[:-1]
    return [
        {"role": "assistant", "content": ln.text}
        if ln.speaker == turn.npc
        else {"role": "user", "content": f"{ln.name}: {ln.text}"}
        for ln in lines
    ]


def speaker_names(turn: Turn) -> list[str]:
    """Everyone else in the turn's scene (for the speaker cut)."""
    scene = scene_of(turn)
    if scene is None:
        return []
    names = [scene.player, scene.player_name]
    for npc, persona in scene.personas.items():
        if npc != turn.npc:
            names += [npc, persona.name]
    return names
