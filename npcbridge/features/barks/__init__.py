"""Barks in batch: ``barks.generate`` → ``barks``.

* :mod:`.generator` -- one pipeline turn per NPC, bounded concurrency, results in order;
* :mod:`.handler` -- what the feature adds to the server (handler, welcome feature, settings);
* :mod:`.settings` -- ``[extra.gameplay.barks]``.
"""

from __future__ import annotations

from .generator import BARK_PROMPT, BarkGenerator
from .handler import BarksFeature
from .settings import BarksSettings

__all__ = ["BARK_PROMPT", "BarkGenerator", "BarksFeature", "BarksSettings"]
