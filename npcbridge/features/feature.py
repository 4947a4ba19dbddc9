"""What a gameplay feature declares: its name, its settings and the messages it serves.

Each feature folder (``quest/``, ``barks/``, ``scenes/``) has a ``handler`` module whose class
says, in one place, everything the feature adds to the server:

* ``name`` -- announced in ``welcome.features``, and the key of its settings table
  ``[extra.gameplay.<name>]`` (a pydantic section in the folder's ``settings`` module);
* :meth:`Feature.register_handlers` -- the client message types it serves.

The builtin gameplay plugin (:mod:`npcbridge.builtin.gameplay`) hands these declarations to the
registration hooks (``npcbridge_register_settings``, ``npcbridge_register_handlers``,
``npcbridge_register_features``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: the ``register(type, handler, cancellable=False)`` callback of ``npcbridge_register_handlers``
RegisterHandler = Callable[..., None]


class Feature(Protocol):
    """One gameplay feature."""

    #: ``welcome.features`` entry and settings key
    name: str

    def register_handlers(self, register: RegisterHandler) -> None:
        """Register the feature's message handlers with ``register``."""
