"""``[extra.gameplay.scenes]``: the bounds of group scenes.

```toml
[extra.gameplay.scenes]
max_replies = 3
```
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SceneSettings(BaseModel):
    """Group scenes."""

    model_config = ConfigDict(extra="forbid")

    #: NPC replies per ``scene.say`` (the first answer included) unless the request says
    max_replies: int = Field(default=3, ge=1, le=16)
    #: most NPCs in one scene
    max_npcs: int = Field(default=8, ge=2, le=32)
    #: scenes one connection may keep open
    max_scenes: int = Field(default=16, ge=1, le=1024)
    #: transcript lines kept per scene (older lines are forgotten)
    transcript_lines: int = Field(default=24, ge=2, le=500)
    #: content words a line must share with an NPC's persona for it to chime in unasked
    min_relevance: int = Field(default=2, ge=1)
