"""NPC actions through tool calling: declared actions become tools; calls are validated.

A valid call becomes an ``action`` frame; an invalid one (unknown action, arguments that are not
JSON or do not match the declared schema) is never sent as an action: it is recorded in
``reply.end.rejected_actions`` with the reason, and logged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..protocol.messages import ActionSpec
from ..providers.base import ToolCallDelta
from .turn import Turn

log = logging.getLogger("npcbridge.pipeline.actions")


def tools_for(actions: list[ActionSpec]) -> list[dict[str, Any]]:
    """OpenAI-style ``tools`` for the declared actions."""
    return [
        {
            "type": "function",
            "function": {
                "name": a.name,
                "description": a.description,
                "parameters": a.parameters,
            },
        }
        for a in actions
    ]


def check_schema(spec: ActionSpec) -> str | None:
    """Return why an action's parameter schema is unusable, or None."""
    try:
        Draft202012Validator.check_schema(spec.parameters)
    except SchemaError as exc:
        return f"action {spec.name!r}: invalid parameters schema: {exc.message}"
    return None


@dataclass
class ToolCallCollector:
    """Reassembles streamed tool-call fragments by index."""

    calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, delta: ToolCallDelta) -> None:
        """Add one fragment."""
        call = self.calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
        if delta.id:
            call["id"] = delta.id
        if delta.name:
            call["name"] += delta.name
        call["arguments"] += delta.arguments

    def completed(self) -> list[dict[str, Any]]:
        """The calls in index order."""
        return [self.calls[i] for i in sorted(self.calls)]


def validate_call(
    actions: list[ActionSpec], name: str, arguments: str
) -> tuple[dict[str, Any] | None, str | None]:
    """Return (args, None) for a valid call or (None, reason) for an invalid one."""
    spec = next((a for a in actions if a.name == name), None)
    if spec is None:
        return None, f"unknown action {name!r}"
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return None, f"action {name!r}: arguments are not valid JSON"
    if not isinstance(args, dict):
        return None, f"action {name!r}: arguments must be a JSON object"
    errors = sorted(Draft202012Validator(spec.parameters).iter_errors(args), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "arguments"
        return None, f"action {name!r}: {where}: {errors[0].message}"
    return args, None


def dispatch(turn: Turn, collector: ToolCallCollector) -> None:
    """Validate the collected calls; emit ``action`` frames for the valid ones."""
    for call in collector.completed():
        args, reason = validate_call(turn.persona.actions, call["name"], call["arguments"])
        if reason is not None:
            log.info("npc=%s rejected tool call: %s", turn.npc, reason)
            turn.rejected_actions.append({"name": call["name"], "reason": reason})
            continue
        assert args is not None
        action = {"name": call["name"], "args": args}
        turn.actions.append(action)
        turn.emit({"type": "action", "id": turn.request_id, "npc": turn.npc, **action})
