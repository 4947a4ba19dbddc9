"""Group scenes: several NPCs and the player in one conversation.

* :mod:`.scene` -- a scene's state (NPCs, transcript, running exchange) and a connection's scenes;
* :mod:`.ranking` -- turn-taking: who answers a line (addressed, relevance, who spoke least);
* :mod:`.prompts` -- what an NPC answering in a scene is told;
* :mod:`.manager` -- opening, changing and ending scenes, and running the exchanges;
* :mod:`.handler` -- what the feature adds to the server (handlers, welcome feature, settings,
  the scene turns' prompt and transcript);
* :mod:`.settings` -- ``[extra.gameplay.scenes]``.
"""

from __future__ import annotations

from .handler import ScenesFeature
from .manager import SceneManager
from .prompts import scene_messages, scene_prompt, speaker_names
from .ranking import (
    NAME_FILLERS,
    STOPWORDS,
    addressed,
    choose_first,
    choose_next,
    mention_at,
    most_relevant,
    name_keys,
    relevance,
    words,
)
from .scene import ConnectionScenes, Line, Scene, scene_of
from .settings import SceneSettings

__all__ = [
    "NAME_FILLERS",
    "STOPWORDS",
    "ConnectionScenes",
    "Line",
    "Scene",
    "SceneManager",
    "SceneSettings",
    "ScenesFeature",
    "addressed",
    "choose_first",
    "choose_next",
    "mention_at",
    "most_relevant",
    "name_keys",
    "relevance",
    "scene_messages",
    "scene_of",
    "scene_prompt",
    "speaker_names",
    "words",
]
