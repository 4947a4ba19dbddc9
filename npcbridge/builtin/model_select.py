"""Model choice from the persona or the configured default."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..models import Catalog
from ..turn import Turn


@hookimpl(trylast=True)
def npcbridge_select_model(turn: Turn, catalog: Catalog) -> str | None:
    """The persona's model if it names one, else the configured default model."""
    if turn.persona.model:
        return turn.persona.model
    if turn.app is not None:
        return str(turn.app.default_model)
    return None
