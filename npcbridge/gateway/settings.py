"""Configuration sections of the gateway: ``[gateway]``, ``[ratelimit]``, ``[retry]``,
``[breaker]``, ``[budget]``, ``[cache]`` and ``[metrics]`` (see docs/gateway.md).

They live here, not in :mod:`npcbridge.config`, so the gateway's modules can import them
without importing the whole configuration; :class:`npcbridge.config.Config` has one field per
section. Every field has a default, so an empty TOML file gives a working gateway.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .catalog import ModelLimits, Tier

DEFAULT_TIERS: dict[str, Tier] = {"realtime": "small", "normal": "small", "deep": "largest"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewaySettings(_Section):
    """Model choice and the time a turn may spend before its first upstream attempt."""

    #: tier of model per ``say.urgency`` (the default rule: realtime → small, deep → largest)
    tiers: dict[str, Tier] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    #: tier for realtime/normal turns of an NPC whose persona says ``quality = true``
    quality_tier: Tier = "large"
    #: how long a turn may wait (rate-limit queue + retry back-off) before giving up, per urgency
    latency_budget_ms: dict[str, int] = Field(
        default_factory=lambda: {"realtime": 2000, "normal": 5000, "deep": 30000}
    )
    #: when less than this fraction of a budget is left, selection steps down one tier
    low_budget_fraction: float = Field(default=0.2, ge=0, le=1)
    #: output tokens assumed for rate-limit estimates when a turn sets no ``max_tokens``
    expected_output_tokens: int = Field(default=200, ge=1)
    #: the ``max_tokens`` sent upstream, and reserved, for a turn that sets none while a budget
    #: applies to it: a reply cannot outgrow its reservation
    budget_max_tokens: int = Field(default=1024, ge=1)
    #: the longest a turn may take from its request to the end of the upstream's reply
    #: (waits, retries and streaming included); past it the reply ends with an error
    turn_deadline_s: float = Field(default=60.0, gt=0)
    #: prices (USD per million tokens) of a model missing from the catalog, for turns a budget
    #: applies to; None = the highest input (output) price in the catalog
    uncatalogued_input_usd_per_m: float | None = Field(default=None, ge=0)
    uncatalogued_output_usd_per_m: float | None = Field(default=None, ge=0)

    def budget_ms(self, urgency: str) -> int:
        """The latency budget for an urgency (``normal`` when the urgency is unknown)."""
        return self.latency_budget_ms.get(urgency, self.latency_budget_ms.get("normal", 5000))


class RateLimitSettings(ModelLimits):
    """Client-side limits per upstream key; the top-level fields apply to every model."""

    enabled: bool = True
    #: per-model overrides, keyed by model id
    models: dict[str, ModelLimits] = Field(default_factory=dict)
    #: correct the buckets from the upstream's ``x-ratelimit-*`` headers
    use_headers: bool = True

    def limits_for(self, model_id: str, declared: ModelLimits | None = None) -> ModelLimits:
        """The limits of one model: the defaults, then what its catalog entry ``declared`` (a
        provider's own limits), then its ``[ratelimit.models."<id>"]`` override."""
        limits = ModelLimits(
            rpm=self.rpm, rpd=self.rpd, tpm=self.tpm, tpd=self.tpd, burst=self.burst
        )
        for layer in (declared, self.models.get(model_id)):
            if layer is not None:
                limits = limits.model_copy(update=layer.model_dump(exclude_none=True))
        return limits


class RetrySettings(_Section):
    """Retries before the first delta reached the client (never after)."""

    #: upstream attempts per model, the first one included
    max_attempts: int = Field(default=3, ge=1, le=20)
    #: full-jitter exponential back-off: sleep uniform(0, min(max_delay, base * 2**n))
    base_delay_ms: int = Field(default=200, ge=0)
    max_delay_ms: int = Field(default=5000, ge=0)
    #: all attempts of one turn, over every model, stop after this long
    max_total_ms: int = Field(default=20000, ge=0)
    #: the longest ``retry-after`` worth waiting for on the same model (longer: fall back)
    max_retry_after_ms: int = Field(default=10000, ge=0)


class BreakerSettings(_Section):
    """A circuit breaker per model."""

    enabled: bool = True
    #: consecutive failures (5xx, timeouts, connection errors) that open the breaker
    failure_threshold: int = Field(default=5, ge=1)
    #: how long an open breaker refuses requests before letting one probe through
    cooldown_s: float = Field(default=30.0, gt=0)


class BudgetSettings(_Section):
    """Spending limits in US dollars (None = unlimited). Days are UTC days."""

    per_player_usd_per_day: float | None = Field(default=None, ge=0)
    per_session_usd: float | None = Field(default=None, ge=0)
    global_usd_per_day: float | None = Field(default=None, ge=0)
    #: seconds of the player's speech the server transcribes per player per UTC day
    per_player_audio_s_per_day: float | None = Field(default=None, ge=0)


class CacheSettings(_Section):
    """The response cache for repeatable requests (temperature 0 or marked cacheable)."""

    enabled: bool = True
    max_entries: int = Field(default=1024, ge=1)
    ttl_s: float = Field(default=600.0, gt=0)
    #: replies longer than this many characters are not kept
    max_reply_chars: int = Field(default=8000, ge=1)


class MetricsSettings(_Section):
    """``GET /metrics`` in Prometheus text format on the WebSocket port."""

    enabled: bool = True
    path: str = "/metrics"
