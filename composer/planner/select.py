"""Fill picture slots: from the writer's uploads (each used once) or from an image library."""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from composer.article import Candidate


def assign(similarity: np.ndarray) -> list[int | None]:
    """For a [slots, images] similarity matrix, the image for each slot (None where images ran
    out) such that no image is used twice and the total similarity is the largest possible."""
    sim = np.asarray(similarity, dtype=np.float64)
    n_slots = sim.shape[0]
    result: list[int | None] = [None] * n_slots
    if sim.size == 0:
        return result
    rows, cols = linear_sum_assignment(sim, maximize=True)
    for r, c in zip(rows, cols):
        result[int(r)] = int(c)
    return result


def best_free(scores: Sequence[float], free: Sequence[int]) -> int:
    """The best-scoring image among those still free (a NaN or -inf score never wins over a
    finite one; ties go to the earlier image). How a `choose` answer becomes a pick."""
    return max(free, key=lambda i: (_finite(scores[i]), -i))


def _finite(x: float) -> float:
    return x if np.isfinite(x) else -np.inf


class CandidateSource(Protocol):
    """What the planner needs from an image library (see composer.retrieval)."""

    def candidates(self, caption: str, k: int, exclude_hashes: Sequence[str] = ()) -> list[Candidate]: ...
