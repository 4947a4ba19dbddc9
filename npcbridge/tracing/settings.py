"""``[extra.tracing]``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TracingSettings(BaseModel):
    """Where spans go and what they may carry."""

    model_config = ConfigDict(extra="forbid")

    #: the OTLP/HTTP traces URL (``http://127.0.0.1:4318/v1/traces``); None: no traces
    endpoint: str | None = None
    #: headers sent with each export (a collector's API key); never logged
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    #: put prompts, replies and the player's name in spans (off: only figures and models)
    content: bool = False
    service_name: str = "npcbridge"
    #: seconds an export may take
    timeout_s: float = Field(default=5.0, gt=0)
