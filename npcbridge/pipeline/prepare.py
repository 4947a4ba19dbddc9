"""The upstream request of a turn, built by its hooks before anything streams: persona →
recall → select model → before-request (the first half of :mod:`.run`'s order)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..gateway.catalog import ModelEntry
from ..plugin.guard import checked
from ..providers.base import ProviderRequest
from . import actions
from .turn import PromptPart, Turn

if TYPE_CHECKING:
    from ..gateway.catalog import Catalog
    from ..plugin.manager import PluginManager


async def select_model(
    hooks: PluginManager, catalog: Catalog, default_model: str, turn: Turn
) -> ModelEntry:
    """The model ``npcbridge_select_model`` picks for ``turn`` (else ``default_model``)."""
    hook = "npcbridge_select_model"
    name = None
    for impl in hooks.impls(hook):
        name = checked(
            hook,
            await hooks.call_one(impl, hook, turn=turn, catalog=catalog),
            plugin=impl.plugin_name,
        )
        if name is not None:
            turn.model_plugin = impl.plugin_name
            break
    return catalog.entry(name or default_model)


async def prepare_request(
    hooks: PluginManager, turn: Turn, choose_model: Callable[[Turn], Awaitable[ModelEntry]]
) -> tuple[ModelEntry, ProviderRequest]:
    """Build the upstream request: persona, recall, the model ``choose_model`` picks,
    before-request hooks."""
    pm = hooks
    parts: list[str] = []
    hook = "npcbridge_persona"
    for impl in pm.impls(hook):
        answer = await pm.call_one(impl, hook, turn=turn)
        if answer is None:
            continue
        checked(hook, answer, plugin=impl.plugin_name)
        for part in [answer] if isinstance(answer, str) else answer:
            parts.append(part)
            turn.prompt_parts.append(PromptPart(impl.plugin_name, part))
    turn.system_parts = parts
    recalled: list[dict[str, Any]] = []
    for messages in checked(
        "npcbridge_recall", await pm.call("npcbridge_recall", turn=turn), each=True
    ):
        recalled.extend(messages)
    turn.model = await choose_model(turn)
    if turn.persona.actions and not turn.tools:
        turn.tools = actions.tools_for(turn.persona.actions)
    system = {"role": "system", "content": "\n\n".join(turn.system_parts)}
    turn.messages = [system, *recalled, {"role": "user", "content": turn.text}]
    hook = "npcbridge_before_request"
    for impl in pm.impls(hook):
        before = len(turn.system_parts)
        await pm.call_one(impl, hook, turn=turn)
        for part in turn.system_parts[before:]:
            turn.prompt_parts.append(PromptPart(impl.plugin_name, part, "before_request"))
    # a part appended to turn.system_parts there is a note for this request only
    if turn.messages and turn.messages[0] is system:
        system["content"] = "\n\n".join(turn.system_parts)
    # before-request hooks may edit turn.text (what goes upstream; the stored history keeps
    # turn.player_text); keep the last user message in step with it
    if turn.messages and turn.messages[-1].get("role") == "user":
        turn.messages[-1] = {**turn.messages[-1], "content": turn.text}
    request = ProviderRequest(
        model=turn.model.id,
        messages=turn.messages,
        max_tokens=turn.max_tokens,
        temperature=turn.temperature,
        tools=turn.tools or None,
        params=dict(turn.params),
        persona_name=turn.persona.name,
        kind=turn.kind,
    )
    return turn.model, request
