"""Configuration of the gameplay features: the ``[extra.gameplay]`` table of the config file
(declared by the gameplay plugin through ``npcbridge_register_settings``). Each feature folder
declares its own sub-table; this model puts them together under the features' names.

```toml
[extra.gameplay.quest]
model = "openai/gpt-oss-20b"    # default: the model-selection hooks with urgency "deep"
max_tokens = 700

[extra.gameplay.barks]
max_concurrency = 8
max_tokens = 40

[extra.gameplay.scenes]
max_replies = 3
```
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .barks.settings import BarksSettings
from .quest.settings import QuestSettings
from .scenes.settings import SceneSettings


class GameplaySettings(BaseModel):
    """All gameplay settings."""

    model_config = ConfigDict(extra="forbid")

    quest: QuestSettings = Field(default_factory=QuestSettings)
    barks: BarksSettings = Field(default_factory=BarksSettings)
    scenes: SceneSettings = Field(default_factory=SceneSettings)
