"""``[extra.gameplay.quest]``: how ``quest.generate`` asks the model.

```toml
[extra.gameplay.quest]
model = "openai/gpt-oss-20b"    # default: the model-selection hooks with urgency "deep"
max_tokens = 700
```
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QuestSettings(BaseModel):
    """``quest.generate``."""

    model_config = ConfigDict(extra="forbid")

    #: model id or alias; None lets the selection hooks choose (urgency ``quest_urgency``)
    model: str | None = None
    urgency: str = "deep"
    max_tokens: int = Field(default=700, ge=64, le=8192)
    temperature: float = Field(default=0.8, ge=0, le=2)
    #: re-ask once with the validation error when the first answer does not validate
    repair: bool = True
    #: last resort: ask for (and parse) the plain-text layout (``标题:``/``描述:``/...)
    text_fallback: bool = True
