"""An image described in words from a classifier's (or a zero-shot) label probabilities.

Both encoders describe a photo the same way — the most likely labels above a confidence floor,
"a tabby; a tiger cat" — so that a text-only model is told what the writer's photos show."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MOST_LABELS = 3  # more labels are mostly near-synonyms of the first


def describe_from_probabilities(probs: np.ndarray, phrases: Sequence[str], floor: float,
                                most: int = MOST_LABELS) -> list[str]:
    """One description per row of `probs` ([n, len(phrases)]): the phrases (labels as they read
    in a sentence, "a tabby", "ancient coins") whose probability is at
    least `floor`, most likely first, joined with "; ". A row where no label reaches the floor is
    described as "" rather than by its top guess: a confidently wrong word ("a ping-pong ball"
    for an astronaut) would be written into the article as a fact."""
    out = []
    for row in np.asarray(probs, dtype=np.float64).reshape(len(probs), -1):
        picked: list[str] = []
        for k in np.argsort(-row)[: most * 2]:
            if row[k] < floor or len(picked) == most:
                break
            phrase = phrases[int(k)]
            if phrase not in picked:
                picked.append(phrase)
        out.append("; ".join(picked))
    return out


def with_article(label: str) -> str:
    """A class name as a phrase: "tabby" → "a tabby", "Egyptian cat" → "an Egyptian cat"."""
    label = " ".join(label.replace("_", " ").split())
    if not label:
        return label
    return ("an " if label[0].lower() in "aeiou" else "a ") + label
