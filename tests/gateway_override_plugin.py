"""A plugin for tests/test_gateway_budgets.py: overrides the builtin model choice (``tryfirst``)."""

from __future__ import annotations

import npcbridge


@npcbridge.hookimpl(tryfirst=True)
def npcbridge_select_model(turn, catalog):  # type: ignore[no-untyped-def]
    """Always the 70B model."""
    return "llama-3.3-70b-versatile"
