"""Memory options, read from the ``[extra.memory]`` table of the config file.

Example::

    [extra.memory]
    window_share = 0.5          # share of the model's context the conversation window may fill
    memory_tokens = 400         # budget for recalled long-term memories in the prompt
    summary_model = "8b"        # cheap model for summaries (default: cheapest small model)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MemorySettings(BaseModel):
    """Every memory knob, with its default."""

    model_config = ConfigDict(extra="forbid")

    #: share of the chosen model's context window the conversation window may use
    window_share: float = Field(default=0.5, gt=0, le=1)
    #: hard cap on the window's size in tokens (None: only the share applies)
    window_max_tokens: int | None = Field(default=None, ge=0)
    #: how many stored turns are read per recall (the window is at most this long)
    window_max_turns: int = Field(default=20, ge=1, le=1000)
    #: tokens kept free for the reply when the turn sets no max_tokens
    reply_reserve_tokens: int = Field(default=512, ge=0)
    #: budget for long-term memories inserted into the prompt
    memory_tokens: int = Field(default=400, ge=0)
    #: at most this many long-term memories per prompt
    recall_limit: int = Field(default=8, ge=0, le=100)
    #: recency decays by this factor per hour since the memory was last recalled
    decay_per_hour: float = Field(default=0.995, gt=0, le=1)
    recency_weight: float = Field(default=1.0, ge=0)
    importance_weight: float = Field(default=1.0, ge=0)
    relevance_weight: float = Field(default=1.0, ge=0)
    #: model for summaries (id or alias); None: the cheapest "small" model of the catalog
    summary_model: str | None = None
    #: summarise once this many complete turns lie beyond the window
    summary_batch: int = Field(default=6, ge=1, le=200)
    summary_max_tokens: int = Field(default=200, ge=16)
    summary_importance: int = Field(default=5, ge=1, le=10)
    #: seconds the server waits for running summaries (and queued writes) at shutdown
    shutdown_wait_s: float = Field(default=10.0, ge=0)
    #: memory writes kept while the store cannot be reached; beyond it the oldest are dropped
    write_queue_max: int = Field(default=10_000, ge=1)
