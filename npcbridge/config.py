"""Configuration: a TOML file, then environment variables, then command-line flags.

Validated with pydantic; :func:`load_config` raises :class:`ConfigError` with one line that names
the bad field, which the CLI prints before exiting. Environment names (documented in the README):

=====================  ==============================
``NPCBRIDGE_CONFIG``   TOML file to read
``NPCBRIDGE_HOST``     ``server.host``
``NPCBRIDGE_PORT``     ``server.port``
``NPCBRIDGE_TOKEN``    ``server.token``
``NPCBRIDGE_STORE``    ``store.url`` (SQLite path or ``redis://`` URL)
``NPCBRIDGE_BASE_URL`` ``upstream.base_url``
``GROQ_API_KEY``       ``upstream.api_key``
=====================  ==============================

Any other field: ``NPCBRIDGE_<SECTION>__<FIELD>``, e.g. ``NPCBRIDGE_SERVER__MAX_IN_FLIGHT=16``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from .gateway_settings import (
    BreakerSettings,
    BudgetSettings,
    CacheSettings,
    GatewaySettings,
    MetricsSettings,
    RateLimitSettings,
    RetrySettings,
)
from .models import ModelEntry, default_models
from .protocol.messages import Persona

GROQ_BASE_URL = "https://api.groq.com/openai/v1"


class ConfigError(Exception):
    """Configuration that cannot be used; the message is one line naming the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Section):
    """The WebSocket server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token: SecretStr | None = None
    max_message_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    max_in_flight: int = Field(default=8, ge=1, le=1024)
    max_bad_messages: int = Field(default=10, ge=1)
    max_text_chars: int = Field(default=4000, ge=1)
    max_connections_per_ip: int = Field(default=2000, ge=1)
    max_messages_per_s: float = Field(default=50.0, gt=0)
    allowed_origins: list[str] | None = None
    ping_interval_s: float | None = Field(default=20.0, gt=0)
    ping_timeout_s: float | None = Field(default=20.0, gt=0)
    send_timeout_s: float = Field(default=10.0, gt=0)
    send_queue_bytes: int = Field(default=1024 * 1024, ge=4096)

    def is_loopback(self) -> bool:
        """True when the server only listens on a loopback address."""
        if self.host in ("localhost", ""):
            return self.host == "localhost"
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class UpstreamConfig(_Section):
    """The OpenAI-compatible upstream (Groq by default)."""

    base_url: str = GROQ_BASE_URL
    api_key: SecretStr | None = None
    default_model: str = "llama-3.1-8b-instant"
    timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_token_timeout_s: float = Field(default=10.0, gt=0)
    include_usage: bool = True
    offline: bool | None = None
    offline_tokens_per_s: float = Field(default=60.0, gt=0)

    def use_offline(self) -> bool:
        """Offline replies when asked for, or when no API key is set and ``offline`` is unset."""
        if self.offline is not None:
            return self.offline
        return self.api_key is None or not self.api_key.get_secret_value()


class StoreConfig(_Section):
    """Where memories, budgets and shared state live."""

    url: str = "npcbridge.db"


class Config(_Section):
    """The whole configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    models: list[ModelEntry] = Field(default_factory=default_models)
    # the gateway's sections (issue 3; see docs/gateway.md)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    ratelimit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    npcs: dict[str, Persona] = Field(default_factory=dict)
    plugins: list[str] = Field(default_factory=list)
    disable_plugins: list[str] = Field(default_factory=list)
    log_level: str = "INFO"
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _token_off_loopback(self) -> Config:
        if not self.server.is_loopback() and self.server.token is None:
            raise ValueError(
                "server.token: a token is required when binding to a non-loopback address "
                f"({self.server.host}); set NPCBRIDGE_TOKEN"
            )
        return self


ENV_NAMES: dict[str, tuple[str, str]] = {
    "NPCBRIDGE_HOST": ("server", "host"),
    "NPCBRIDGE_PORT": ("server", "port"),
    "NPCBRIDGE_TOKEN": ("server", "token"),
    "NPCBRIDGE_STORE": ("store", "url"),
    "NPCBRIDGE_BASE_URL": ("upstream", "base_url"),
    "GROQ_API_KEY": ("upstream", "api_key"),
}


def _set(data: dict[str, Any], section: str, key: str, value: Any) -> None:
    target = data.setdefault(section, {})
    if not isinstance(target, dict):
        raise ConfigError(f"{section}: must be a table")
    target[key] = value


def _from_env(env: Mapping[str, str], data: dict[str, Any]) -> None:
    for name, (section, key) in ENV_NAMES.items():
        if env.get(name):
            _set(data, section, key, env[name])
    for name, value in env.items():
        if name.startswith("NPCBRIDGE_") and "__" in name:
            section, _, key = name[len("NPCBRIDGE_") :].lower().partition("__")
            _set(data, section, key, value)


def load_config(
    file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from a TOML file, the environment and flag overrides.

    ``overrides`` maps dotted names (``"server.port"``) to values; ``None`` values are ignored.
    """
    env = os.environ if env is None else env
    file = file or env.get("NPCBRIDGE_CONFIG") or None
    data: dict[str, Any] = {}
    if file:
        path = Path(file)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
    _from_env(env, data)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        if dotted == "plugins":
            data["plugins"] = [*data.get("plugins", []), *value]
            continue
        section, _, key = dotted.partition(".")
        if key:
            _set(data, section, key, value)
        else:
            data[section] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        if not first["loc"]:
            return msg  # model-level checks name their field themselves
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{where}: {msg}{more}"
