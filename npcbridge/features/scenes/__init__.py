"""Group scenes: several NPCs and the player in one conversation.

* :mod:`.scene` -- a scene's state (NPCs, transcript, running exchange) and a connection's scenes;
* :mod:`.ranking` -- turn-taking: who answers a line (addressed, relevance, who spoke least);
* :mod:`.prompts` -- what an NPC answering in a scene is told;
* :mod:`.manager` -- opening, changing and ending scenes, and running the exchanges;
* :mod:`.handler` -- what the feature adds to the server (handlers, welcome feature, settings,
  the scene turns' prompt and transcript);
* :mod:`.settings` -- ``[extra.gameplay.scenes]``.
"""
