"""Which request each server frame belongs to, and which frame ends it (no I/O).

The asyncio :class:`~npcbridge.client.Client` only pumps: it hands each decoded frame to
:meth:`Router.feed` and delivers what comes out. The rule (docs/protocol.md, "Errors"):

- ``reply.end`` ends a reply unless its ``finish`` is "error"; then the ``error`` that follows
  under the same id ends it, and the partial text is kept.
- An ``error`` without ``refused`` ends the pending request with its id.
- An ``error`` with ``refused`` ends that request only when ``refused`` is the type of the
  message the client sent under that id and the request has received no frame yet. Otherwise it
  refused something else (a duplicate ``say``, a ``cancel``) and touches no request.
- A ``reply.start`` whose ``parent`` names a pending ``scene.say`` or ``world.event`` opens a
  request under its own id; ``scene.done`` ends the ``scene.say``, the ``ok`` after the
  reactions ends the ``world.event``. A ``say`` or speech request (``speech``,
  ``speech.start``) ends like a reply (its ``transcript`` and ``reply.audio`` frames end
  nothing). Any other request ends with its first frame.

``tests/vectors/flows.json`` is the shared test of this rule (the Lua and GDScript clients run it
too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

RequestId = str | int

_REPLY = "say"
#: the message types answered by a reply (``speech``: after its ``transcript``)
_REPLIES = frozenset({_REPLY, "speech", "speech.start"})
_SCENE = "scene.say"
#: requests whose replies stream under their own ids (``parent`` names the request)
_PARENTS = (_SCENE, "world.event")


@dataclass
class Ended:
    """How a request ended."""

    #: ``reply`` (a final ``reply.end``), ``error``, or ``answer`` (one answer or ``scene.done``)
    ends: Literal["reply", "error", "answer"]
    #: the frame that ended it
    frame: dict[str, Any]
    #: ``reply.end.text``; for an error, the text of a ``reply.end`` finish "error" before it
    text: str | None = None
    #: the ``reply.delta`` texts, joined
    deltas: str = ""


@dataclass
class Routed:
    """Where one frame goes."""

    frame: dict[str, Any]
    #: the pending request it belongs to; None: a stray frame, to report and route nowhere
    request: RequestId | None
    #: set when the frame opened a scene reply: the id of its ``scene.say``
    parent: RequestId | None = None
    #: set when the frame ended the request (which is no longer pending then)
    ended: Ended | None = None


@dataclass
class _Pending:
    sent: str
    received: bool = False
    deltas: list[str] = field(default_factory=list)
    partial: str | None = None


def _is_id(value: Any) -> TypeGuard[RequestId]:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


class Router:
    """The pending requests of one connection and the rule that routes frames to them."""

    def __init__(self) -> None:
        self._pending: dict[RequestId, _Pending] = {}

    def open(self, request_id: RequestId, sent_type: str) -> None:
        """A message of type ``sent_type`` goes out under ``request_id``; wait for its answer."""
        self._pending[request_id] = _Pending(sent_type)

    def forget(self, request_id: RequestId) -> None:
        """Stop waiting for ``request_id`` (it could not be sent)."""
        self._pending.pop(request_id, None)

    def pending(self) -> list[RequestId]:
        """Ids still waiting, oldest first."""
        return list(self._pending)

    def drop_all(self) -> list[RequestId]:
        """The connection ended: forget every pending request; return their ids."""
        ids = list(self._pending)
        self._pending.clear()
        return ids

    def feed(self, frame: dict[str, Any]) -> Routed:
        """Route one decoded server frame."""
        rid = frame.get("id")
        if not _is_id(rid):
            return Routed(frame, None)
        request = self._pending.get(rid)
        if request is None:
            return self._scene_reply(rid, frame)
        kind = frame.get("type")
        if kind == "error":
            refused = frame.get("refused")
            if refused is not None and (refused != request.sent or request.received):
                return Routed(frame, None)
            return self._end(rid, Ended("error", frame, request.partial, "".join(request.deltas)))
        request.received = True
        if request.sent == _SCENE:
            return (
                self._end(rid, Ended("answer", frame))
                if kind == "scene.done"
                else Routed(frame, rid)
            )
        if request.sent not in _REPLIES:
            return self._end(rid, Ended("answer", frame))
        if kind == "reply.delta":
            request.deltas.append(str(frame.get("text", "")))
        elif kind == "reply.end":
            text = str(frame.get("text", ""))
            if frame.get("finish") != "error":
                return self._end(rid, Ended("reply", frame, text, "".join(request.deltas)))
            request.partial = text  # the error that ends the request follows
        return Routed(frame, rid)

    def _scene_reply(self, rid: RequestId, frame: dict[str, Any]) -> Routed:
        """A ``reply.start`` naming a pending ``scene.say`` or ``world.event`` as ``parent``
        opens a request."""
        parent = frame.get("parent")
        exchange = self._pending.get(parent) if _is_id(parent) else None
        if frame.get("type") != "reply.start" or exchange is None or exchange.sent not in _PARENTS:
            return Routed(frame, None)
        exchange.received = True
        self._pending[rid] = _Pending(_REPLY, received=True)
        return Routed(frame, rid, parent=parent)

    def _end(self, rid: RequestId, ended: Ended) -> Routed:
        del self._pending[rid]
        return Routed(ended.frame, rid, ended=ended)
