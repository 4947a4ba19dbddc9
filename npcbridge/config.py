"""Configuration: a TOML file, then environment variables, then command-line flags.

Validated with pydantic: every section is a typed model reachable from one :class:`Config`
(``config.section(name)``): the core's as fields, a plugin's ``[extra.<name>]`` table once the
plugin registers its model (``npcbridge_register_settings``, validated by :class:`Sections`).
Every error is one line naming the field (``gateway.turn_deadline_s: must be a number``):
:func:`load_config` and :meth:`Sections.register` raise :class:`ConfigError`, which the CLI
prints before exiting. Environment names (documented in the README):

=====================  ==============================
``NPCBRIDGE_CONFIG``   TOML file to read
``NPCBRIDGE_HOST``     ``server.host``
``NPCBRIDGE_PORT``     ``server.port``
``NPCBRIDGE_TOKEN``    ``server.token``
``NPCBRIDGE_STORE``    ``store.url`` (SQLite path or ``redis://`` URL)
``NPCBRIDGE_BASE_URL`` ``upstream.base_url``
``NPCBRIDGE_WORKERS``  ``server.workers`` (server processes on the port)
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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from .gateway.catalog import AudioModelEntry, ModelEntry, default_audio_models, default_models
from .gateway.settings import (
    BreakerSettings,
    BudgetSettings,
    CacheSettings,
    GatewaySettings,
    MetricsSettings,
    RateLimitSettings,
    RetrySettings,
)
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
    #: server processes on the one port (``npcbridge serve --workers``; npcbridge.workers)
    workers: int = Field(default=1, ge=1, le=256)
    max_messages_per_s: float = Field(default=50.0, gt=0)
    allowed_origins: list[str] | None = None
    ping_interval_s: float | None = Field(default=20.0, gt=0)
    ping_timeout_s: float | None = Field(default=20.0, gt=0)
    send_timeout_s: float = Field(default=10.0, gt=0)
    send_queue_bytes: int = Field(default=1024 * 1024, ge=4096)
    #: how long a kept-alive plain-HTTP connection may wait for its next request
    http_keepalive_s: float = Field(default=30.0, gt=0)
    #: how long one plain-HTTP request (head and body) may take to arrive
    http_request_timeout_s: float = Field(default=10.0, gt=0)
    #: an HTTP-transport session with no request, poll or stream for this long expires
    http_session_idle_s: float = Field(default=120.0, gt=0)
    #: HTTP-transport sessions one address may hold open
    http_sessions_per_ip: int = Field(default=64, ge=1)
    #: seconds between the comment lines that keep an event stream alive
    http_heartbeat_s: float = Field(default=15.0, gt=0)

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
    #: where speech goes (``/audio/speech``, ``/audio/transcriptions``): None = ``base_url``;
    #: e.g. a local Whisper or TTS server speaking the OpenAI audio API
    audio_base_url: str | None = None
    #: the key for ``audio_base_url`` (None = ``api_key``)
    audio_api_key: SecretStr | None = None

    def use_offline(self) -> bool:
        """Offline replies when asked for, or when no API key is set and ``offline`` is unset."""
        if self.offline is not None:
            return self.offline
        return self.api_key is None or not self.api_key.get_secret_value()


class StoreConfig(_Section):
    """Where memories, budgets and shared state live."""

    url: str = "npcbridge.db"


class Sections(BaseModel):
    """The ``[extra.<name>]`` tables: raw until the plugin owning one registers its model, then
    validated (:meth:`register`) and handed out typed (:meth:`section`)."""

    model_config = ConfigDict(extra="allow")

    _models: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return (self.__pydantic_extra__ or {})[name]

    def __setitem__(self, name: str, table: Any) -> None:
        setattr(self, name, table)

    def __contains__(self, name: object) -> bool:
        return name in (self.__pydantic_extra__ or {})

    def get(self, name: str, default: Any = None) -> Any:
        """The raw table ``name`` as read from the file (``default`` when absent)."""
        return (self.__pydantic_extra__ or {}).get(name, default)

    def register(self, name: str, model: type[BaseModel]) -> BaseModel:
        """Validate the table ``name`` against ``model`` (an absent table gives its defaults)
        and keep the result; :class:`ConfigError` in one line naming the field."""
        table = self.get(name) or {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"extra.{name}: must be a table")
        try:
            section = model.model_validate(dict(table))
        except ValidationError as exc:
            raise ConfigError(one_line(exc, f"extra.{name}")) from None
        self._models[name] = section
        return section

    def section(self, name: str) -> BaseModel:
        """The validated table ``name``; KeyError when no plugin registered it."""
        return self._models[name]


class Config(_Section):
    """The whole configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    models: list[ModelEntry] = Field(default_factory=default_models)
    audio_models: list[AudioModelEntry] = Field(default_factory=default_audio_models)
    # the gateway's sections (see docs/gateway.md)
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
    extra: Sections = Field(default_factory=Sections)

    def section(self, name: str) -> BaseModel:
        """Any settings section, typed: a core one (``gateway``, ``server``, ...) or a plugin's
        registered ``[extra.<name>]``; KeyError when there is none of that name."""
        core = getattr(self, name, None) if name in type(self).model_fields else None
        if isinstance(core, BaseModel):
            return core
        return self.extra.section(name)

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
    "NPCBRIDGE_WORKERS": ("server", "workers"),
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
    return one_line(exc)


#: what a value must be, by pydantic error type (the message never repeats the value)
_MUST_BE = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "extra_forbidden": "is not a known setting",
    "missing": "is required",
}
_BOUNDS = {
    "greater_than": ("gt", "must be greater than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}


def field_message(error: ErrorDetails) -> str:
    """What is wrong with one field, in our words."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _MUST_BE:
        return _MUST_BE[kind]
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{words} {ctx.get(key)}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    msg = error["msg"]
    return msg[len("Value error, ") :] if msg.startswith("Value error, ") else msg


def one_line(exc: ValidationError, prefix: str = "") -> str:
    """The first problem of ``exc`` as ``<prefix>.<field path>: <what is wrong>`` (the count of
    further problems appended), without the value that was given."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join([*([prefix] if prefix else []), *(str(p) for p in first["loc"])])
    msg = field_message(first)
    if not where:
        if first["type"] == "value_error":
            return msg  # model-level checks name their field themselves
        where = "config"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {msg}{more}"
