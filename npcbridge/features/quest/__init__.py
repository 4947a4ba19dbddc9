"""Quest generation: ``quest.generate`` → ``quest``.

* :mod:`.schema` -- what a valid quest is (core fields, difficulties, declared game fields);
* :mod:`.parse` -- reading an answer as JSON or as the plain-text layout;
* :mod:`.prompts` -- the quest designer's instructions;
* :mod:`.generator` -- asking the model: structured output, one repair, plain-text fallback,
  offline quests;
* :mod:`.handler` -- what the feature adds to the server (handler, welcome feature, settings);
* :mod:`.settings` -- ``[extra.gameplay.quest]``.
"""
