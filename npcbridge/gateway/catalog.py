"""The model catalog: which upstream models exist, what they cost and how fast they are.

The catalog lives in config (``[[models]]`` in the TOML file) so studios can follow Groq's model
list without a release; the defaults below are Groq's current models, with older model names
(several retired upstream, e.g. ``gpt-4``, ``llama-3.1-405b-reason``) as aliases. Speech models
(``[[audio_models]]``: text to speech priced per character, speech to text per audio hour) sit
beside them in :attr:`Catalog.audio`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Tier = Literal["small", "large", "largest", "offline"]


class ModelLimits(BaseModel):
    """Limits of one upstream model (None = no limit). Groq counts them per organisation."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=1)
    rpd: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    tpd: int | None = Field(default=None, ge=1)
    #: most requests sent at once from a full bucket (None = the whole minute's allowance);
    #: ``burst = 1`` spaces requests evenly at rpm/60 per second
    burst: int | None = Field(default=None, ge=1)


class ModelEntry(BaseModel):
    """One upstream model."""

    id: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    provider: str = "openai"
    context_window: int = Field(default=8192, ge=256)
    input_usd_per_m: float = Field(default=0.0, ge=0)
    output_usd_per_m: float = Field(default=0.0, ge=0)
    tokens_per_s: float = Field(default=100.0, gt=0)
    #: the tier model selection may pick it for; None: only chosen when named (a provider
    #: plugin's models get None unless their entry sets a tier)
    tier: Tier | None = "small"
    tools: bool = False
    json_schema: bool = False
    fallbacks: list[str] = Field(default_factory=list)
    #: the model's own rate limits, as the provider that serves it declares them; the config's
    #: ``[ratelimit]`` defaults apply under them and ``[ratelimit.models."<id>"]`` over them
    limits: ModelLimits | None = None

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        """Price of a request with these token counts."""
        return (
            input_tokens * self.input_usd_per_m + output_tokens * self.output_usd_per_m
        ) / 1_000_000


def default_models() -> list[ModelEntry]:
    """Groq's models as of 2026, older model names mapped onto them (see docs/models.md)."""
    return [
        ModelEntry(
            id="llama-3.1-8b-instant",
            aliases=["gpt-3.5-turbo", "gpt-4o-mini", "8b"],
            context_window=131072,
            input_usd_per_m=0.05,
            output_usd_per_m=0.08,
            tokens_per_s=750,
            tier="small",
            tools=True,
            fallbacks=["llama-3.3-70b-versatile"],
        ),
        ModelEntry(
            id="llama-3.3-70b-versatile",
            aliases=["gpt-4", "gpt-4o", "llama-3.1-70b-versatile", "70b"],
            context_window=131072,
            input_usd_per_m=0.59,
            output_usd_per_m=0.79,
            tokens_per_s=280,
            tier="large",
            tools=True,
            fallbacks=["llama-3.1-8b-instant"],
        ),
        ModelEntry(
            id="openai/gpt-oss-120b",
            aliases=["llama-3.1-405b-reason", "405b"],
            context_window=131072,
            input_usd_per_m=0.15,
            output_usd_per_m=0.60,
            tokens_per_s=500,
            tier="largest",
            tools=True,
            json_schema=True,
            fallbacks=["llama-3.3-70b-versatile"],
        ),
        ModelEntry(
            id="openai/gpt-oss-20b",
            aliases=[],
            context_window=131072,
            input_usd_per_m=0.075,
            output_usd_per_m=0.30,
            tokens_per_s=1000,
            tier="small",
            tools=True,
            json_schema=True,
            fallbacks=["llama-3.1-8b-instant"],
        ),
    ]


class AudioModelEntry(BaseModel):
    """One speech model: text to speech (``tts``, priced per character) or speech to text
    (``stt``, priced per hour of audio). ``[[audio_models]]`` in the config file."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    kind: Literal["tts", "stt"]
    provider: str = "openai"
    usd_per_m_chars: float = Field(default=0.0, ge=0)
    usd_per_hour: float = Field(default=0.0, ge=0)
    #: the longest text one speech request may carry (None: no limit)
    max_input_chars: int | None = Field(default=None, ge=1)
    voices: list[str] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    limits: ModelLimits | None = None

    def cost_usd(self, chars: int = 0, seconds: float = 0.0) -> float:
        """Price of synthesising ``chars`` characters or transcribing ``seconds`` of audio."""
        return chars * self.usd_per_m_chars / 1_000_000 + seconds * self.usd_per_hour / 3600


def default_audio_models() -> list[AudioModelEntry]:
    """Groq's speech models as of 2026 (prices and limits change: check Groq's pages)."""
    return [
        AudioModelEntry(
            id="canopylabs/orpheus-v1-english",
            kind="tts",
            usd_per_m_chars=22.0,
            max_input_chars=200,
            voices=["autumn", "diana", "hannah", "austin", "daniel", "troy"],
        ),
        AudioModelEntry(
            id="whisper-large-v3-turbo",
            kind="stt",
            usd_per_hour=0.04,
            fallbacks=["whisper-large-v3"],
            limits=ModelLimits(rpm=20, rpd=2000),
        ),
        AudioModelEntry(
            id="whisper-large-v3",
            kind="stt",
            usd_per_hour=0.111,
            limits=ModelLimits(rpm=20, rpd=2000),
        ),
    ]


#: espeak-ng, the offline voice (free, local; registered only when the binary works)
ESPEAK_MODEL = AudioModelEntry(id="espeak-ng", kind="tts", provider="espeak", voices=["en"])


OFFLINE_MODEL = ModelEntry(
    id="offline", provider="offline", context_window=8192, tokens_per_s=60, tier="offline"
)


class UnknownModel(KeyError):
    """A model name that is neither an id nor an alias in the catalog."""


class Catalog:
    """Lookup of model entries by id or alias."""

    def __init__(
        self,
        entries: list[ModelEntry],
        fallback: ModelEntry | None = None,
        audio: list[AudioModelEntry] | None = None,
    ) -> None:
        self.entries = list(entries)
        #: the speech models (text to speech, speech to text), by id
        self.audio: dict[str, AudioModelEntry] = {e.id: e for e in audio or ()}
        #: what :meth:`entry` gives for a name the catalog does not know (offline: the offline
        #: model); None passes the name through as a zero-cost entry
        self.fallback = fallback
        self._by_name: dict[str, ModelEntry] = {}
        for entry in self.entries:
            for name in (entry.id, *entry.aliases):
                self._by_name.setdefault(name, entry)

    def add(self, entry: ModelEntry) -> None:
        """Append an entry (a provider plugin's model); its names must be new."""
        self.entries.append(entry)
        for name in (entry.id, *entry.aliases):
            self._by_name.setdefault(name, entry)

    def resolve(self, name: str) -> ModelEntry:
        """Return the entry for an id or alias; raise :class:`UnknownModel` otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownModel(name) from None

    def entry(self, name: str) -> ModelEntry:
        """The entry for an id or alias; an unknown name gives :attr:`fallback`, else passes
        through as-is at zero cost (for servers such as Ollama whose models are not in the
        catalog)."""
        found = self._by_name.get(name)
        if found is not None:
            return found
        return self.fallback if self.fallback is not None else ModelEntry(id=name)

    def get(self, name: str) -> ModelEntry | None:
        """Return the entry for an id or alias, or None."""
        return self._by_name.get(name)

    def by_tier(self, tier: Tier) -> list[ModelEntry]:
        """All entries of one tier, in catalog order."""
        return [e for e in self.entries if e.tier == tier]

    def cheapest(self, tier: Tier = "small") -> ModelEntry | None:
        """The cheapest model of ``tier`` (else of the whole catalog) by price, then id; None
        for an empty catalog. Background work (summaries, judgements) runs on it."""
        pool = self.by_tier(tier) or self.entries
        if not pool:
            return None
        return min(pool, key=lambda e: (e.input_usd_per_m + e.output_usd_per_m, e.id))

    def audio_models(self, kind: str) -> list[AudioModelEntry]:
        """The speech models of one kind (``tts`` or ``stt``), in catalog order."""
        return [e for e in self.audio.values() if e.kind == kind]

    def ids(self) -> list[str]:
        """Model ids in catalog order."""
        return [e.id for e in self.entries]

    def knows(self, model_id: str) -> bool:
        """Whether ``model_id`` is a model of the catalog (text or speech, a plugin's too)."""
        return model_id in self._by_name or model_id in self.audio
