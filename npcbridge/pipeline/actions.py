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


def unusable_schema(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` is not a usable JSON schema (Draft 2020-12), or None. Names the
    meta-schema's keyword it breaks, not jsonschema's message: that one quotes the schema."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON schema (it breaks the meta-schema's {exc.validator!r} rule)"
    return None


def schema_problem(schema: dict[str, Any], instance: Any, name: str) -> str | None:
    """Why ``instance`` (called ``name``) breaks ``schema``, or None when it validates.

    Quotes neither: the path to the first failing part goes through the property names the
    schema declares and item indexes only (a key only the instance has is not named), then
    the JSON-schema keyword it breaks, e.g. ``item: breaks its schema's 'maxLength' rule``."""
    errors = sorted(Draft202012Validator(schema).iter_errors(instance), key=str)
    if not errors:
        return None
    error = errors[0]
    schema_path = list(error.absolute_schema_path)
    declared = {schema_path[i + 1] for i, key in enumerate(schema_path[:-1]) if key == "properties"}
    where = [name]
    for part in error.absolute_path:
        if not (isinstance(part, int) or part in declared):
            break
        where.append(str(part))
    return f"{'.'.join(where)}: breaks its schema's {error.validator!r} rule"


def check_schema(spec: ActionSpec) -> str | None:
    """Return why an action's parameter schema is unusable, or None."""
    return unusable_schema(spec.parameters)


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
    if spec is None:  # the model's name is not repeated: only declared names are
        return None, "unknown action"
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return None, f"action {spec.name!r}: arguments are not valid JSON"
    if not isinstance(args, dict):
        return None, f"action {spec.name!r}: arguments must be a JSON object"
    problem = schema_problem(spec.parameters, args, "arguments")
    if problem is not None:
        return None, f"action {spec.name!r}: {problem}"
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
