"""One NPC turn: what the pipeline and the hooks read and write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.messages import Persona, Say

if TYPE_CHECKING:
    from ..gateway.catalog import ModelEntry


#: the cancellation message of a ``cancel`` with ``barge_in: true`` (``Turn.cancel_reason``)
BARGE_IN = "barge_in"


@dataclass
class Usage:
    """Token counts the upstream reported, or estimated (``estimated``) when it reported none
    (a cancelled or broken stream)."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class PromptPart:
    """One part of the system prompt and the plugin that gave it (``stage``: the hook,
    ``persona`` or ``before_request``)."""

    plugin: str
    text: str
    stage: str = "persona"


@dataclass(frozen=True)
class RecalledMemory:
    """A long-term memory recall put into the prompt, with its ranking score."""

    text: str
    kind: str
    importance: int
    score: float


@dataclass(frozen=True)
class UpstreamStep:
    """One model the gateway tried for the turn: ``outcome`` is ``ok``, ``retry`` (the same
    model again), ``fallback`` (the next model of the chain), ``failed`` (the turn's last
    failure) or ``cached``; ``reason`` names the failure (``status_503``, ``timeout``,
    ``breaker_open``, ``rate_limited``...)."""

    model: str
    outcome: str
    reason: str = ""


@dataclass
class Turn:
    """Everything about one ``say`` while it runs. Hooks may edit the mutable fields in place.

    ``emit`` queues a server message for the client at once (used for ``emote`` and ``action``
    frames); it never blocks.
    """

    request_id: str | int
    npc: str
    persona: Persona
    player: str
    text: str
    session_id: str
    context: dict[str, Any] = field(default_factory=dict)
    urgency: str = "normal"
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = True
    #: system prompt parts, messages sent upstream, extra upstream parameters
    system_parts: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)
    model: ModelEntry | None = None
    emotes: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    #: tool calls that failed validation (``name``, ``reason``), listed in ``reply.end``
    rejected_actions: list[dict[str, Any]] = field(default_factory=list)
    #: the tier the model selection asked for (None: the selection did not use tiers)
    tier: str | None = None
    #: set by the gateway: the model that answered (a fallback, or the cached reply's model),
    #: the milliseconds from the request to the attempt that answered, whether the reply came
    #: from the response cache, and what the attempts used (reported or estimated)
    served_model: str | None = None
    queue_ms: float | None = None
    cached: bool = False
    usage: Usage | None = None
    #: set by the pipeline: each system-prompt part with the plugin that produced it, and the
    #: plugin whose ``npcbridge_select_model`` answered; set by the gateway: every attempt it
    #: made (retries, fallbacks); set by the plugin that recalls memories: what it recalled
    prompt_parts: list[PromptPart] = field(default_factory=list)
    model_plugin: str | None = None
    #: why the model was chosen, in words, set by the plugin that chose it
    model_rule: str | None = None
    upstream_steps: list[UpstreamStep] = field(default_factory=list)
    recalled: list[RecalledMemory] = field(default_factory=list)
    #: per-turn scratch space for plugins: each plugin keeps its values under its own name
    #: (the name it is registered under, e.g. its module's ``__name__``), never core values
    state: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.perf_counter)
    emit: Callable[[dict[str, Any]], None] = field(default=lambda frame: None, repr=False)
    #: the kind of work: "say", "bark", "quest", "summary", "scene"
    kind: str = "say"
    cacheable: bool = False
    #: the player's line as the client sent it, on turns that answer one (a ``say``, a scene
    #: line the player spoke): hooks may edit ``text`` (what goes upstream, e.g. with a scene
    #: speaker's "Name: " label), the stored history keeps this. None on turns that answer no
    #: player line (barks, quests, summaries, an NPC answering an NPC in a scene). A ``say``
    #: turn built without it gets a copy of ``text``.
    player_text: str | None = None
    #: the game's declared effects of this exchange on the NPC's state (``say.effects``, a
    #: ``StateChange`` map), applied when the turn completed; None: none declared
    effects: dict[str, Any] | None = None
    #: why the turn was cancelled, when it was: the cancellation's message (:data:`BARGE_IN`
    #: when the player spoke over the NPC), None for a plain ``cancel``
    cancel_reason: str | None = None
    #: the request's ``voice`` (True, False, a :class:`~npcbridge.protocol.voice.VoiceOverride`;
    #: None: the persona's ``voice.always`` decides)
    voice: Any = None

    def __post_init__(self) -> None:
        if self.player_text is None and self.kind == "say":
            self.player_text = self.text

    @classmethod
    def from_say(
        cls,
        message: Say,
        persona: Persona,
        session_id: str,
        emit: Callable[[dict[str, Any]], None],
    ) -> Turn:
        """Build a turn from a validated ``say`` message."""
        return cls(
            request_id=message.id,
            npc=message.npc,
            persona=persona,
            player=message.player,
            text=message.text,
            session_id=session_id,
            context=dict(message.context or {}),
            urgency=message.urgency,
            max_tokens=message.max_tokens or persona.max_tokens,
            temperature=message.temperature
            if message.temperature is not None
            else persona.temperature,
            stream=message.stream,
            emit=emit,
            effects=message.effects.model_dump(exclude_none=True) if message.effects else None,
            voice=message.voice,
        )


@dataclass
class TurnResult:
    """How a turn ended; given to ``npcbridge_after_turn``."""

    text: str
    finish: str
    model: str
    usage: Usage
    cost_usd: float
    queue_ms: float
    ttft_ms: float
    total_ms: float
    streamed_text: str = ""
    error_code: str | None = None
    cached: bool = False
