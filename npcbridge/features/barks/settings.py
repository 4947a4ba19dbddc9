"""``[extra.gameplay.barks]``: how ``barks.generate`` runs a batch.

```toml
[extra.gameplay.barks]
max_concurrency = 8
max_tokens = 40
```
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BarksSettings(BaseModel):
    """``barks.generate``."""

    model_config = ConfigDict(extra="forbid")

    #: barks generated at once (the gateway's rate limiter still paces the upstream requests)
    max_concurrency: int = Field(default=8, ge=1, le=64)
    max_tokens: int = Field(default=40, ge=8, le=400)
    temperature: float = Field(default=0.9, ge=0, le=2)
    urgency: str = "normal"
    #: bark results may be served from (and stored in) the gateway's response cache
    cacheable: bool = True
