"""Meaning, not spelling: sentence and word vectors from the sentence embedder that already ships
(all-MiniLM-L6-v2, English). A paraphrase ("they feed on greenfly") meets its passage ("ladybirds
eat aphids") here when few of its words do.

Vectors are kept per text for the life of the process: the check runs after every edit, and an
edit changes one block while the materials stay the same.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TextEmbedder(Protocol):
    """Unit vectors for texts, one row each."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, with a cache of the vectors it made."""

    MAX_CACHE = 50_000

    def __init__(self) -> None:
        from composer.retrieval.embedded import shared_sentence_model

        self.model = shared_sentence_model()
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.model.encode(missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
            with self._lock:
                if len(self._cache) > self.MAX_CACHE:
                    self._cache.clear()
                self._cache.update(zip(missing, np.asarray(vectors, dtype=np.float32)))
        with self._lock:
            rows = [self._cache.get(t) for t in texts]
        dim = next((r.shape[0] for r in rows if r is not None), 384)
        return np.stack([r if r is not None else np.zeros(dim, np.float32) for r in rows]) if rows else \
            np.zeros((0, dim), np.float32)


_default: MiniLMEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> TextEmbedder | None:
    """The shipped embedder, or None where sentence-transformers or its weights are missing (the
    check then matches words only)."""
    global _default
    with _default_lock:
        if _default is None:
            try:
                _default = MiniLMEmbedder()
            except (ImportError, OSError, RuntimeError):
                return None
        return _default
