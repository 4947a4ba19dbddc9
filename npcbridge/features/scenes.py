"""Group scenes: several NPCs and the player in one conversation.

A scene belongs to one connection. ``scene.say`` starts an *exchange*: the turn-taking policy
picks who answers the player, and NPCs may then answer each other until nobody is addressed or
relevant any more, or the bound (``max_replies`` replies per exchange) is reached. Every NPC
reply is an ordinary pipeline turn of kind ``"scene"`` that streams under its own id,
``"<scene.say id>/<n>"`` (n = 1, 2, …), with ``reply.start``/``reply.end`` naming the speaker
(``npc``), the ``scene`` and the ``parent`` request. The exchange ends with ``scene.done``.

Turn-taking (:func:`choose_first`, :func:`choose_next`):

1. addressed: ``to`` in the request, else the NPC whose name (its id, its persona name or a
   word of that name) appears first in the line;
2. relevance: the NPC whose persona (description, personality, knowledge, ``topics``) shares
   the most content words with the line;
3. who spoke least in this scene (then scene order).

The player's line is always answered (by the best candidate); a follow-up by another NPC needs
that NPC to be addressed in the last reply or to reach ``min_relevance`` shared words.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.errors import DecodeError, ProtocolError
from ..protocol.messages import Persona, SceneSay, SceneStart
from ..turn import Turn
from .settings import SceneSettings

if TYPE_CHECKING:
    from ..app import App

_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
STOPWORDS = frozenset(
    """
    about above after again against also been before being below between both could does doing
    down during each from further have having here hers herself himself into itself just more
    most myself once only other ought ours ourselves over same should some such than that their
    theirs them themselves then there these they this those through under until very what when
    where which while whom with would your yours yourself yourselves will shall might must
    well said says tell told know like want need come going gone make made many much even
    """.split()
)


#: words of a name nobody is called by
NAME_FILLERS = frozenset({"the", "of", "von", "van", "der", "and"})


@dataclass
class Line:
    """One line of a scene's transcript (``speaker`` is an NPC id, or None for the player)."""

    speaker: str | None
    name: str
    text: str


@dataclass
class Scene:
    """One running scene."""

    name: str
    player: str
    player_name: str
    personas: dict[str, Persona]
    context: dict[str, Any]
    max_replies: int
    transcript: deque[Line]
    spoken: Counter[str] = field(default_factory=Counter)
    #: the running exchange, its request id, and the NPC speaking right now
    task: asyncio.Task[Any] | None = None
    request_id: str | int | None = None
    speaking: str | None = None
    interrupted: bool = False

    @property
    def npcs(self) -> list[str]:
        """NPC ids in scene order."""
        return list(self.personas)

    def names(self) -> dict[str, str]:
        """{npc id: persona name}."""
        return {npc: p.name for npc, p in self.personas.items()}


# ---------------------------------------------------------------- turn-taking policy


def words(text: str) -> set[str]:
    """Content words of a text: lower-case, four letters or more, no stop words."""
    return {w for w in (m.lower() for m in _WORD.findall(text)) if len(w) >= 4} - STOPWORDS


def name_keys(npc: str, persona: Persona) -> list[str]:
    """The names an NPC answers to."""
    keys = {npc.lower(), persona.name.lower()}
    # "Brom Ironfist" answers to "Brom" and "Ironfist"; "Captain Varn" to "Varn" too
    keys |= {w for w in persona.name.lower().split() if len(w) >= 3 and w not in NAME_FILLERS}
    return sorted(k for k in keys if k)


def mention_at(text: str, key: str) -> int | None:
    """Where ``key`` appears in ``text`` as a whole word (case-insensitive), or None."""
    if not key:
        return None
    if key.isascii():
        match = re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", text, re.IGNORECASE)
        return match.start() if match else None
    at = text.lower().find(key)
    return at if at >= 0 else None


def addressed(text: str, candidates: dict[str, Persona]) -> str | None:
    """The candidate whose name appears first in ``text``."""
    best: tuple[int, int] | None = None
    chosen = None
    for order, (npc, persona) in enumerate(candidates.items()):
        spots = [at for key in name_keys(npc, persona) if (at := mention_at(text, key)) is not None]
        if spots and (best is None or (min(spots), order) < best):
            best, chosen = (min(spots), order), npc
    return chosen


def relevance(text: str, persona: Persona) -> int:
    """Content words ``text`` shares with what the persona is and knows."""
    extra = persona.model_extra or {}
    topics = extra.get("topics")
    about = " ".join(
        s
        for s in (
            persona.description,
            persona.personality,
            *persona.knowledge,
            *(topics if isinstance(topics, list) else []),
        )
        if isinstance(s, str)
    )
    return len(words(text) & words(about))


def most_relevant(scene: Scene, candidates: dict[str, Persona], text: str) -> tuple[str, int]:
    """The candidate most relevant to ``text`` (ties: who spoke least, then scene order), and
    its relevance."""
    order = {npc: i for i, npc in enumerate(scene.npcs)}
    scores = {npc: relevance(text, persona) for npc, persona in candidates.items()}
    best = min(candidates, key=lambda npc: (-scores[npc], scene.spoken[npc], order[npc]))
    return best, scores[best]


def choose_first(scene: Scene, text: str, to: str | None = None) -> str:
    """Who answers the player: addressed, then relevance, then who spoke least."""
    if to is not None and to in scene.personas:
        return to
    named = addressed(text, scene.personas)
    if named is not None:
        return named
    return most_relevant(scene, scene.personas, text)[0]


def choose_next(scene: Scene, last: str, text: str, min_relevance: int) -> str | None:
    """Who (if anyone) answers the NPC ``last``: addressed in its line, else relevant enough."""
    others = {npc: p for npc, p in scene.personas.items() if npc != last}
    if not others:
        return None
    named = addressed(text, others)
    if named is not None:
        return named
    best, score = most_relevant(scene, others, text)
    return best if score >= min_relevance else None


# ---------------------------------------------------------------- prompts (used by the plugin)


def scene_prompt(turn: Turn) -> str | None:
    """The system-prompt part that tells the NPC who else is in the scene."""
    scene: Scene | None = turn.state.get("scene")
    if scene is None:
        return None
    others = [p.name for npc, p in scene.personas.items() if npc != turn.npc]
    present = ", ".join([*others, f"{scene.player_name} (the player)"])
    return (
        f"You are in a group conversation ({scene.name}) with: {present}. Their lines are "
        f"given as 'Name: text'. Reply only with what {turn.persona.name} says next, without "
        "a name label, and never write lines for anyone else. You may address others by name."
    )


def scene_messages(turn: Turn) -> list[dict[str, str]]:
    """The scene's transcript before the line being answered, as chat messages."""
    scene: Scene | None = turn.state.get("scene")
    if scene is None:
        return []
    lines = list(scene.transcript)[:-1]
    return [
        {"role": "assistant", "content": ln.text}
        if ln.speaker == turn.npc
        else {"role": "user", "content": f"{ln.name}: {ln.text}"}
        for ln in lines
    ]


def speaker_names(turn: Turn) -> list[str]:
    """Everyone else in the turn's scene (for the speaker cut)."""
    scene: Scene | None = turn.state.get("scene")
    if scene is None:
        return []
    names = [scene.player, scene.player_name]
    for npc, persona in scene.personas.items():
        if npc != turn.npc:
            names += [npc, persona.name]
    return names


# ---------------------------------------------------------------- running scenes


class SceneManager:
    """The scenes of every connection of one server (state dies with the connection)."""

    def __init__(self, app: App, settings: SceneSettings) -> None:
        self.app = app
        self.settings = settings

    @staticmethod
    def scenes(session: Any) -> dict[str, Scene]:
        """This connection's scenes."""
        found: dict[str, Scene] | None = getattr(session, "npcbridge_scenes", None)
        if found is None:
            found = {}
            session.npcbridge_scenes = found
        return found

    def get(self, session: Any, name: str, request_id: Any) -> Scene:
        """A scene by name, or ``bad_request``."""
        scene = self.scenes(session).get(name)
        if scene is None:
            raise DecodeError(f"no scene {name!r}; start it first", request_id=request_id)
        return scene

    def _persona(self, session: Any, npc: str, request_id: Any) -> Persona:
        try:
            return self.app.persona(npc, session.npcs)
        except ProtocolError as exc:
            exc.request_id = request_id
            raise

    def start(self, session: Any, msg: SceneStart) -> None:
        """Open (or replace) a scene."""
        if len(set(msg.npcs)) != len(msg.npcs):
            raise DecodeError("scene.start: field 'npcs': duplicate npc", request_id=msg.id)
        if len(msg.npcs) > self.settings.max_npcs:
            raise DecodeError(
                f"scene.start: field 'npcs': at most {self.settings.max_npcs}", request_id=msg.id
            )
        scenes = self.scenes(session)
        if msg.scene not in scenes and len(scenes) >= self.settings.max_scenes:
            raise DecodeError(
                f"scene.start: at most {self.settings.max_scenes} scenes per connection",
                request_id=msg.id,
            )
        personas = {npc: self._persona(session, npc, msg.id) for npc in msg.npcs}
        old = scenes.get(msg.scene)
        if old is not None:
            self.interrupt(old)
        scenes[msg.scene] = Scene(
            name=msg.scene,
            player=msg.player,
            player_name=msg.player_name or msg.player,
            personas=personas,
            context=dict(msg.context or {}),
            max_replies=msg.max_replies or self.settings.max_replies,
            transcript=deque(maxlen=self.settings.transcript_lines),
        )

    def add(self, session: Any, name: str, npc: str, request_id: Any) -> None:
        """Add an NPC to a running scene (it may answer from the next line on)."""
        scene = self.get(session, name, request_id)
        if npc in scene.personas:
            return
        if len(scene.personas) >= self.settings.max_npcs:
            raise DecodeError(
                f"scene.add: a scene has at most {self.settings.max_npcs} npcs",
                request_id=request_id,
            )
        scene.personas[npc] = self._persona(session, npc, request_id)

    def remove(self, session: Any, name: str, npc: str, request_id: Any) -> None:
        """Remove an NPC; its reply in progress ends "cancelled" and the exchange goes on."""
        scene = self.get(session, name, request_id)
        if npc not in scene.personas:
            raise DecodeError(f"npc {npc!r} is not in scene {name!r}", request_id=request_id)
        del scene.personas[npc]
        if scene.speaking == npc and scene.task is not None:
            scene.task.cancel()

    def interrupt(self, scene: Scene) -> None:
        """Stop the running exchange: the reply in progress ends "cancelled", no one else
        answers, and ``scene.done`` says ``stopped: "interrupted"``."""
        if scene.task is not None and not scene.task.done():
            scene.interrupted = True
            scene.task.cancel()

    def end(self, session: Any, name: str, request_id: Any) -> None:
        """Interrupt and forget a scene."""
        scene = self.get(session, name, request_id)
        self.interrupt(scene)
        del self.scenes(session)[name]

    async def say(self, session: Any, msg: SceneSay) -> None:
        """Run one exchange (tracked as the ``scene.say`` request); ends with ``scene.done``."""
        scene = self.get(session, msg.scene, msg.id)
        if msg.to is not None and msg.to not in scene.personas:
            raise DecodeError(
                f"scene.say: field 'to': npc {msg.to!r} is not in the scene", request_id=msg.id
            )
        session.check_text("scene.say", msg.text, msg.id)
        previous = scene.task
        session.track(msg.id, self._exchange(session, scene, msg, previous))
        scene.task = session.turns.get(msg.id)
        scene.request_id = msg.id
        scene.interrupted = False
        # a new line from the player interrupts NPCs still talking among themselves
        if previous is not None and not previous.done():
            previous.cancel()

    async def _exchange(
        self, session: Any, scene: Scene, msg: SceneSay, previous: asyncio.Task[Any] | None
    ) -> None:
        replies: list[dict[str, Any]] = []
        stopped = "quiet"
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous], timeout=5)
            bound = msg.max_replies or scene.max_replies
            context = {**scene.context, **(msg.context or {})}
            line = Line(None, scene.player_name, msg.text)
            scene.transcript.append(line)
            speaker = choose_first(scene, msg.text, msg.to) if scene.personas else None
            while speaker is not None:
                if len(replies) >= bound:
                    stopped = "bound"
                    break
                sub_id = f"{msg.id}/{len(replies) + 1}"
                finish, text = await self._reply(
                    session, scene, msg, sub_id, speaker, line, context
                )
                replies.append({"id": sub_id, "npc": speaker, "finish": finish})
                if finish == "error":
                    stopped = "error"
                    break
                if finish == "cancelled" and (scene.interrupted or speaker in scene.personas):
                    stopped = "interrupted"
                    break
                if finish != "cancelled" and text:
                    line = Line(speaker, scene.personas[speaker].name, text)
                    scene.transcript.append(line)
                    scene.spoken[speaker] += 1
                last = line.speaker or speaker
                speaker = choose_next(scene, last, line.text, self.settings.min_relevance)
        except asyncio.CancelledError:
            stopped = "interrupted"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            if scene.task is asyncio.current_task():
                scene.task, scene.speaking = None, None
        session.send(
            {
                "type": "scene.done",
                "id": msg.id,
                "scene": scene.name,
                "replies": replies,
                "stopped": stopped,
            }
        )

    async def _reply(
        self,
        session: Any,
        scene: Scene,
        msg: SceneSay,
        sub_id: str,
        speaker: str,
        line: Line,
        context: dict[str, Any],
    ) -> tuple[str, str]:
        """One NPC's streamed reply; returns (finish, final text)."""
        persona = scene.personas[speaker]
        seen: dict[str, Any] = {}

        def emit(frame: dict[str, Any]) -> None:
            kind = frame.get("type")
            if kind in ("reply.start", "reply.end"):
                frame = {**frame, "scene": scene.name, "parent": msg.id}
            if kind in ("reply.end", "error"):
                seen[kind] = frame
            session.send(frame)

        turn = Turn(
            request_id=sub_id,
            npc=speaker,
            persona=persona,
            player=scene.player,
            text=f"{line.name}: {line.text}",
            session_id=session.id,
            context=context,
            urgency=msg.urgency,
            max_tokens=persona.max_tokens,
            temperature=persona.temperature,
            emit=emit,
            kind="scene",
            app=self.app,
        )
        turn.state["scene"] = scene
        if line.speaker is None:
            # the player's own words (turn.text carries the "Name: " label), for moderation
            turn.state["player_text"] = line.text
        scene.speaking = speaker
        try:
            result = await self.app.pipeline.run(turn)
        finally:
            scene.speaking = None
        if result is not None:
            await self.app.pipeline.finish(turn, result)
        end = seen.get("reply.end")
        if "error" in seen:
            return "error", ""
        if end is None:
            return "error", ""
        return str(end["finish"]), str(end["text"])
