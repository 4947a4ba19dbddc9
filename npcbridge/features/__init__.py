"""Gameplay features on top of the dialogue pipeline, one folder each.

* :mod:`.quest` -- ``quest.generate``: structured output, validation, one repair, plain-text
  fallback.
* :mod:`.barks` -- ``barks.generate``: short ambient lines for many NPCs at once.
* :mod:`.scenes` -- group scenes: several NPCs and the player, turn-taking, interruptions.
* :mod:`.speakers` -- the speaker cut: an NPC never speaks as another character.

A feature folder's ``handler`` module declares what the feature adds (:mod:`.feature`); shared
here: :mod:`.settings` (the ``[extra.gameplay]`` table), :mod:`.connection` (what the features
use of a client connection) and :mod:`.upstream` (one non-streamed completion through the
gateway). The builtin plugin :mod:`npcbridge.builtin.gameplay` wires them into the server.
"""
