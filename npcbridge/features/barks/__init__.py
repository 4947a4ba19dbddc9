"""Barks in batch: ``barks.generate`` → ``barks``.

* :mod:`.generator` -- one pipeline turn per NPC, bounded concurrency, results in order;
* :mod:`.handler` -- what the feature adds to the server (handler, welcome feature, settings);
* :mod:`.settings` -- ``[extra.gameplay.barks]``.
"""
