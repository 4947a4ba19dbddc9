"""State options, read from the ``[extra.state]`` table of the config file.

```toml
[extra.state]
mood_half_life_s = 600       # a felt mood halves in ten minutes (persona.state may override)
judge = true                 # a small model judges each exchange (offline: simple rules)
judge_model = "8b"           # default: the cheapest "small" model of the catalog
familiarity_per_turn = 1.0   # every completed exchange makes the NPC know the player better
```
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StateSettings(BaseModel):
    """Every state knob, with its default."""

    model_config = ConfigDict(extra="forbid")

    #: seconds in which a felt mood's intensity halves
    mood_half_life_s: float = Field(default=600.0, gt=0)
    #: whether the exchange is judged after each turn (by a small model; offline by rules)
    judge: bool = True
    #: the judging model (id or alias); None: the cheapest "small" model
    judge_model: str | None = None
    judge_max_tokens: int = Field(default=80, ge=16, le=1000)
    #: the largest relationship amount one judgement may move (before volatility)
    judge_max_step: float = Field(default=10.0, ge=0, le=100)
    #: familiarity every completed exchange adds (before volatility)
    familiarity_per_turn: float = Field(default=1.0, ge=0, le=100)
    #: reactions to one world event run at most this many at once
    max_reactions: int = Field(default=8, ge=1, le=64)
    reaction_max_tokens: int = Field(default=40, ge=1, le=1000)
    #: seconds the server waits for running judgements at shutdown
    shutdown_wait_s: float = Field(default=5.0, ge=0)
