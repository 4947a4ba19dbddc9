"""The voice feature, declared in one place, as a plugin on the declared hooks:

* settings ``[extra.voice]`` (:class:`.settings.VoiceSettings`);
* ``welcome.features``: ``voice`` when a text-to-speech model can be served (the upstream's, or
  espeak-ng offline), ``speech_in`` when a speech-to-text model can;
* the messages ``speech``, ``speech.start``, ``speech.chunk``, ``speech.end`` (with
  ``speech_in``; :mod:`.listen`);
* per turn: ``npcbridge_text_sent`` cuts the text the player gets into spoken units and starts
  their synthesis (:mod:`.speaker`), ``npcbridge_stream_end`` sends the pending audio before
  ``reply.end`` (or stops it all on a cancel), ``npcbridge_post_process`` makes a barged-in
  reply's text what was voiced, ``npcbridge_reply_fields`` adds ``reply.end.voice``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...pipeline.turn import BARGE_IN, Turn, TurnResult
from ...plugin.specs import hookimpl
from ...protocol.voice import VoiceOverride
from ..feature import RegisterHandler
from .listen import Listener
from .settings import VoiceSettings
from .speaker import ReplyVoice, VoicePlan

if TYPE_CHECKING:
    from ...gateway.catalog import AudioModelEntry
    from ...plugin.api import PluginAPI

log = logging.getLogger("npcbridge.plugin.voice")

#: where a turn keeps its :class:`ReplyVoice` (``turn.state`` is keyed by plugin)
STATE_KEY = "voice"
#: the kinds of turn that may be voiced (a player's line, a scene reply)
VOICED_KINDS = frozenset({"say", "scene"})
_NO_OVERRIDE = VoiceOverride.model_validate({})


class VoiceFeature:
    """Speech out and in (see the module docstring)."""

    name = "voice"

    def __init__(self, api: PluginAPI) -> None:
        self.api = api
        self.settings = VoiceSettings()

    # ---------------------------------------------------------------- start-up

    @hookimpl
    def npcbridge_register_settings(self, register: Callable[..., None]) -> None:
        """``[extra.voice]``."""
        register("voice", VoiceSettings)

    @hookimpl
    def npcbridge_startup(self, api: PluginAPI) -> None:
        """Take the validated settings."""
        settings = api.plugin_settings("voice")
        assert isinstance(settings, VoiceSettings)
        self.settings = settings

    def tts_model(self, name: str | None = None) -> AudioModelEntry | None:
        """The text-to-speech model to use: ``name`` when it can be served, else the
        configured one, else the offline one; None when no voice can be served."""
        audio = self.api.turns.audio
        for candidate in (name, self.settings.tts_model, self.settings.offline_tts_model):
            entry = audio.entry(candidate, "tts") if candidate else None
            if entry is not None:
                return entry
        return None

    def stt_model(self) -> AudioModelEntry | None:
        """The speech-to-text model, when one can be served."""
        return self.api.turns.audio.entry(self.settings.stt_model, "stt")

    @hookimpl
    def npcbridge_register_features(self, register: Callable[[str], None]) -> None:
        """``voice`` and ``speech_in``, only when they work."""
        if not self.settings.enabled:
            return
        if self.tts_model() is not None:
            register("voice")
        if self.stt_model() is not None:
            register("speech_in")

    @hookimpl
    def npcbridge_register_handlers(self, register: RegisterHandler) -> None:
        """The speech messages, when speech can be transcribed."""
        model = self.stt_model()
        if not self.settings.enabled or model is None:
            return
        listener = Listener(self.api, self.settings, model)
        register("speech", listener.on_speech, cancellable=True)
        register("speech.start", listener.on_start, cancellable=True)
        register("speech.chunk", listener.on_chunk)
        register("speech.end", listener.on_end)

    # ---------------------------------------------------------------- per turn

    def plan(self, turn: Turn) -> VoicePlan | None:
        """How ``turn`` is spoken, or None when it is not."""
        persona_voice = turn.persona.voice
        choice = turn.voice
        wanted = bool(persona_voice and persona_voice.always) if choice is None else choice
        if not wanted or not self.settings.enabled or turn.kind not in VOICED_KINDS:
            return None
        override = choice if isinstance(choice, VoiceOverride) else _NO_OVERRIDE
        base = persona_voice
        name = override.name or (base.name if base else None)
        model_name = override.model or (base.model if base else None)
        speed = override.speed if override.speed is not None else (base.speed if base else None)
        model = self.tts_model(model_name)
        if model is None:
            return None  # no voice on this server: the reply is text only
        voice = name or self.settings.default_voice
        if model.voices and voice not in model.voices:
            default = self.settings.default_voice
            voice = default if default in model.voices else model.voices[0]
        return VoicePlan(model, voice, float(speed) if speed is not None else None)

    def _voice_of(self, turn: Turn, create: bool) -> ReplyVoice | None:
        found = turn.state.get(STATE_KEY)
        if isinstance(found, ReplyVoice) or found is False or not create:
            return found or None
        plan = self.plan(turn)
        if plan is None:
            turn.state[STATE_KEY] = False
            return None
        voice = turn.state[STATE_KEY] = ReplyVoice(turn, plan, self.settings, self.api.turns.audio)
        return voice

    @hookimpl
    def npcbridge_text_sent(self, turn: Turn, text: str) -> None:
        """Cut the text the player got into spoken units; synthesise each one as it completes."""
        voice = self._voice_of(turn, create=True)
        if voice is not None:
            voice.feed(text)

    @hookimpl
    async def npcbridge_stream_end(self, turn: Turn, finish: str) -> None:
        """Send the pending audio before ``reply.end``; a cancelled reply stops at once."""
        voice = self._voice_of(turn, create=finish != "cancelled")
        if voice is None:
            return
        if finish == "cancelled":
            voice.stop()
            return
        await voice.finish()

    @hookimpl
    def npcbridge_post_process(self, turn: Turn, text: str, finish: str) -> str | None:
        """A barged-in reply's text is what the player heard (memory keeps that)."""
        voice = self._voice_of(turn, create=False)
        if voice is None or finish != "cancelled" or turn.cancel_reason != BARGE_IN:
            return None
        voice.stop()
        return voice.heard

    @hookimpl
    async def npcbridge_after_turn(self, turn: Turn, result: TurnResult) -> None:
        """Count the reply's speech cost (once, when no budget held it per synthesis)."""
        voice = self._voice_of(turn, create=False)
        if voice is not None:
            await self.api.turns.audio.charge(turn, voice.report.cost_usd)

    @hookimpl
    def npcbridge_reply_fields(self, turn: Turn, result: TurnResult) -> dict[str, Any] | None:
        """``reply.end.voice`` (nothing is sent after it)."""
        voice = self._voice_of(turn, create=False)
        if voice is None:
            return None
        voice.stop()
        return {"voice": voice.fields()}
