"""``[extra.console]``: whether the console is served and what its inspector keeps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    """The console's settings section."""

    model_config = ConfigDict(extra="forbid")

    #: serve the page and its admin endpoints
    enabled: bool = True
    #: record the games' turns in the inspector too (the console's own turns always are);
    #: records stay in this process's memory
    capture_games: bool = False
    #: how many turn records the inspector keeps (the oldest go first)
    ring_size: int = Field(default=200, ge=1, le=10000)
    #: how many players and NPCs the spend tables keep per day (the smallest spenders go first)
    spend_keys: int = Field(default=500, ge=1, le=100000)
