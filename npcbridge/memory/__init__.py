"""NPC memory: the conversation window, long-term memories, recall ranking, summaries.

The pieces, each small and testable alone:

* :mod:`.settings` -- ``[extra.memory]`` options (budgets, decay, summary model);
* :mod:`.tokens` -- the chars/4 token estimate and the window trimmed to a budget;
* :mod:`.ranking` -- Generative-Agents scoring (recency, importance, relevance);
* :mod:`.summarize` -- background summaries of turns that left the window;
* :mod:`.handlers` -- the ``memory.add`` / ``memory.forget`` / ``memory.query`` messages.

The hooks that tie them into a turn live in :mod:`npcbridge.memory.plugin`. Design notes and
the reasons behind them: ``docs/memory.md``.
"""
