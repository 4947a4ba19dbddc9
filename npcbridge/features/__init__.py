"""Gameplay features on top of the dialogue pipeline (issue 7).

* :mod:`.quest` — ``quest.generate``: structured output, validation, one repair, plain-text
  fallback.
* :mod:`.barks` — ``barks.generate``: short ambient lines for many NPCs at once.
* :mod:`.scenes` — group scenes: several NPCs and the player, turn-taking, interruptions.
* :mod:`.speakers` — the speaker cut: an NPC never speaks as another character.
* :mod:`.settings` — the ``[extra.gameplay]`` configuration.

They are wired into the server by the builtin plugin :mod:`npcbridge.builtin.gameplay`.
"""
