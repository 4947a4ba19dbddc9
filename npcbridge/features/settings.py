"""Configuration of the gameplay features: the ``[extra.gameplay]`` table of the config file
(declared by the gameplay plugin through ``npcbridge_register_settings``).

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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuestSettings(_Section):
    """``quest.generate``."""

    #: model id or alias; None lets the selection hooks choose (urgency ``quest_urgency``)
    model: str | None = None
    urgency: str = "deep"
    max_tokens: int = Field(default=700, ge=64, le=8192)
    temperature: float = Field(default=0.8, ge=0, le=2)
    #: re-ask once with the validation error when the first answer does not validate
    repair: bool = True
    #: last resort: ask for (and parse) the seed's plain-text layout
    text_fallback: bool = True


class BarksSettings(_Section):
    """``barks.generate``."""

    #: barks generated at once (the gateway's rate limiter still paces the upstream requests)
    max_concurrency: int = Field(default=8, ge=1, le=64)
    max_tokens: int = Field(default=40, ge=8, le=400)
    temperature: float = Field(default=0.9, ge=0, le=2)
    urgency: str = "normal"
    #: bark results may be served from (and stored in) the gateway's response cache
    cacheable: bool = True


class SceneSettings(_Section):
    """Group scenes."""

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


class GameplaySettings(_Section):
    """All gameplay settings."""

    quest: QuestSettings = Field(default_factory=QuestSettings)
    barks: BarksSettings = Field(default_factory=BarksSettings)
    scenes: SceneSettings = Field(default_factory=SceneSettings)
