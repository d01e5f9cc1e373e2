"""The FAISS side of a library: inner-product search over L2-normalised vectors, ids = vector ids.

Exact (IndexFlatIP) while small; HNSW once exact search would cost more than a few milliseconds
per query on one thread (see HNSW_THRESHOLD). The file on disk is only a cache: it is written to
a temp file and renamed, and on open it is used only if its id set equals SQLite's.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

# Measured with benchmarks/index_speed.py on a 2-core CPU, one thread: exact search at dim 512
# costs 0.8 ms at 10k vectors, 6 ms at 50k and 18 ms at 100k (dim 384: 0.8, 3.5, 11 ms). Past
# 20k vectors HNSW (M=32, efSearch=64) answers in under 1 ms at 100k with recall@1 ~0.97 on random
# vectors (the hard case); building it costs ~75 s per 100k vectors on 2 cores, paid once, and
# again after a sync that removed images (HNSW cannot delete).
HNSW_THRESHOLD = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64


class VectorIndex:
    def __init__(self, dim: int, index: faiss.IndexIDMap2 | None = None):
        self.dim = dim
        self.index = index if index is not None else _flat(dim)

    @property
    def is_hnsw(self) -> bool:
        return "HNSW" in type(faiss.downcast_index(self.index.index)).__name__

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    @classmethod
    def build(cls, dim: int, batches: Iterable[tuple[np.ndarray, np.ndarray]], total: int) -> VectorIndex:
        index = cls(dim, _hnsw(dim) if total > HNSW_THRESHOLD else _flat(dim))
        for ids, vecs in batches:
            index.add(ids, vecs)
        return index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Iterable[int]) -> bool:
        """Remove ids; False when this index type cannot (HNSW) and must be rebuilt instead."""
        ids = np.fromiter(ids, dtype=np.int64)
        if not len(ids):
            return True
        if self.is_hnsw:
            return False
        self.index.remove_ids(faiss.IDSelectorBatch(ids))
        return True

    def should_upgrade(self) -> bool:
        return not self.is_hnsw and len(self) > HNSW_THRESHOLD

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def save(self, path: Path) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, dim: int) -> VectorIndex | None:
        """The cached index, or None when missing, unreadable or of another dimension."""
        try:
            index = faiss.read_index(str(path))
        except (RuntimeError, OSError):
            return None
        if index.d != dim or not isinstance(index, faiss.IndexIDMap2):
            return None
        inner = faiss.downcast_index(index.index)
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = HNSW_EF_SEARCH  # a search-time setting; do not trust the file's
        return cls(dim, index)


def _flat(dim: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _hnsw(dim: int) -> faiss.IndexIDMap2:
    inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    inner.hnsw.efSearch = HNSW_EF_SEARCH
    return faiss.IndexIDMap2(inner)
