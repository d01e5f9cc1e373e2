"""Fill picture slots: from the writer's uploads (each used once) or from an image library.

Every way of filling slots gives the same shape: a Selection, slot -> Figure. A slot missing
from it gets no figure; a Figure whose `image` is None is an empty slot that keeps its library
candidates for the writer to pick from.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

from composer.article import Candidate, Figure, Paragraph
from composer.images import ImageError, LoadedImage, load_image
from composer.model.base import ChatModel
from composer.planner.prompts import Prompts

if TYPE_CHECKING:
    from composer.retrieval.encoder import ImageTextEncoder

LIBRARY_TOP_K = 4  # library matches kept per slot: the model's choices and the writer's swaps

Selection = dict[int, Figure]


class CandidateSource(Protocol):
    """What the planner needs from an image library (see composer.retrieval)."""

    def candidates(self, caption: str, k: int, exclude_hashes: Sequence[str] = ()) -> list[Candidate]: ...


@dataclass(frozen=True)
class Slots:
    """The picture slots of an article: after which paragraphs (indices into `paragraphs`), the
    caption of each (in the article's language), and the query each sends to the encoder (the
    caption, or its English version for an encoder that reads only English)."""

    paragraphs: Sequence[Paragraph]
    at: tuple[int, ...]
    captions: tuple[str, ...]
    queries: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.queries:
            object.__setattr__(self, "queries", self.captions)


def photos_first(model: ChatModel, prompts: Prompts, encoder: ImageTextEncoder | None) -> bool:
    """Whether uploads are matched to paragraphs before captioning (match_photos): for a model
    that cannot see them, with an encoder to compare them, in a dialect that captions from
    photo descriptions (the xcomposer protocol keeps its order: caption, then choose)."""
    return encoder is not None and not model.sees_images and prompts.captions_from_photos


def match_photos(paragraphs: Sequence[Paragraph], at: Sequence[int], uploads: Sequence[LoadedImage],
                 encoder: ImageTextEncoder) -> dict[int, int]:
    """Slot -> upload index by paragraph-photo similarity under the encoder, each photo used once
    (for a model that cannot see the photos: each caption is then written from its paragraph and
    its photo's description, so caption and picture agree)."""
    if not at or not uploads:
        return {}
    text_vecs = encoder.encode_texts([paragraphs[i].text for i in at])
    image_vecs = encoder.encode_images([u.image for u in uploads])
    picks = assign(np.asarray(text_vecs) @ np.asarray(image_vecs).T)
    return {slot: pick for slot, pick in zip(at, picks) if pick is not None}


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


def _figure(image, caption: str, source, candidates: Sequence[Candidate] = ()) -> Figure:
    return Figure(image=image, caption=caption, alt=caption, source=source, candidates=tuple(candidates))


# --- uploads -------------------------------------------------------------------------------
def from_uploads(slots: Slots, uploads: Sequence[LoadedImage], *, model: ChatModel, prompts: Prompts,
                 encoder: ImageTextEncoder | None, photos: Mapping[int, int] | None = None) -> Selection:
    """The writer's images, each used at most once. The one matching rule for composing and for
    adding a picture in an edit: `photos` already matched to paragraphs (match_photos) where the
    dialect captions from photos; else, with an encoder and a model that does not see images,
    the assignment that maximises total caption-image similarity; otherwise the model chooses,
    slot by slot, among the images still free (looking at them when it sees images, the
    reference protocol; else by their file names)."""
    picks: list[int | None]
    if photos is not None:
        picks = [photos.get(slot) for slot in slots.at]
    elif encoder is not None and not model.sees_images:
        text_vecs = encoder.encode_texts(list(slots.queries))
        image_vecs = encoder.encode_images([u.image for u in uploads])
        picks = assign(np.asarray(text_vecs) @ np.asarray(image_vecs).T)
    else:
        picks = _model_picks(slots, uploads, model, prompts)
    return {slot: _figure(uploads[pick].ref, caption, "upload")
            for slot, caption, pick in zip(slots.at, slots.captions, picks) if pick is not None}


def _model_picks(slots: Slots, uploads: Sequence[LoadedImage], model: ChatModel, prompts: Prompts) -> list[int | None]:
    picks: list[int | None] = []
    chosen: dict[int, Image.Image] = {}
    for slot, caption in zip(slots.at, slots.captions):
        free = [i for i in range(len(uploads)) if i not in picks]
        if not free:
            picks.append(None)
            continue
        cp = prompts.choose(slots.paragraphs, slot, caption, [uploads[i].image for i in free],
                            [Path(uploads[i].ref.path).stem for i in free], model.sees_images, chosen)
        scores = dict(zip(free, model.choose(cp.prompt, list(cp.options))))
        best = free[best_free([scores[i] for i in free], range(len(free)))]
        picks.append(best)
        chosen[slot] = uploads[best].image
    return picks


# --- library -------------------------------------------------------------------------------
def from_library(slots: Slots, library: CandidateSource, *, model: ChatModel, prompts: Prompts,
                 min_match: float | None) -> Selection:
    """Library pictures: chosen by the model among each caption's top matches when it sees
    images, else the best total assignment of scores."""
    if model.sees_images:
        return _library_by_model(slots, library, model, prompts, min_match)
    return _library_by_score(slots, library, min_match)


def _library_by_score(slots: Slots, library: CandidateSource, min_match: float | None) -> Selection:
    """All slots at once: each caption's top matches, then the assignment that maximises total
    score with no picture used twice (slot by slot, an early caption could take the one picture
    a later caption needed)."""
    found = [library.candidates(q, len(slots.at) + LIBRARY_TOP_K) for q in slots.queries]
    pool = list({c.image.sha256: c.image for cands in found for c in cands}.values())
    column = {ref.sha256: j for j, ref in enumerate(pool)}
    scores = np.full((len(slots.at), len(pool)), -1e9)
    for i, cands in enumerate(found):
        for c in cands:
            scores[i, column[c.image.sha256]] = c.score
    picks = assign(scores) if pool else [None] * len(slots.at)
    selection: Selection = {}
    for row, (slot, caption, cands, pick) in enumerate(zip(slots.at, slots.captions, found, picks)):
        keep = tuple(cands[:LIBRARY_TOP_K])
        if pick is None or scores[row, pick] <= -1e9 or (min_match is not None and scores[row, pick] < min_match):
            selection[slot] = _figure(None, caption, "none", keep)
            continue
        ref = pool[pick]
        if all(c.image.sha256 != ref.sha256 for c in keep):
            keep = (next(c for c in cands if c.image.sha256 == ref.sha256),) + keep[: LIBRARY_TOP_K - 1]
        selection[slot] = _figure(ref, caption, "library", keep)
    return selection


def _library_by_model(slots: Slots, library: CandidateSource, model: ChatModel, prompts: Prompts,
                      min_match: float | None) -> Selection:
    selection: Selection = {}
    chosen: dict[int, Image.Image] = {}
    for slot, caption, query in zip(slots.at, slots.captions, slots.queries):
        used = [f.image.sha256 for f in selection.values() if f.image]
        figure, image = _pick_one(slots, slot, caption, query, library, used, chosen, model, prompts, min_match)
        if image is not None:
            chosen[slot] = image
        selection[slot] = figure
    return selection


def _pick_one(slots: Slots, slot: int, caption: str, query: str, library: CandidateSource, used: Sequence[str],
              chosen: Mapping[int, Image.Image], model: ChatModel, prompts: Prompts,
              min_match: float | None) -> tuple[Figure, Image.Image | None]:
    """The model chooses among the top unused library matches, shown as images (the reference
    protocol). Below the encoder's `min_match` a picture would be unrelated (a cat in a space
    article): the slot stays empty, its candidates kept for the writer to pick from."""
    found: list[Candidate] = [c for c in library.candidates(query, LIBRARY_TOP_K, exclude_hashes=used)
                              if c.image.sha256 not in used]
    if not found or (min_match is not None and found[0].score < min_match):
        return _figure(None, caption, "none", found), None
    loaded = []
    for c in found:  # a library file may have gone or gone bad since it was indexed
        try:
            loaded.append((c, load_image(c.image.path).image))
        except ImageError:
            continue
    if not loaded:
        return _figure(None, caption, "none", found), None
    found, images = [c for c, _ in loaded], [img for _, img in loaded]
    best = 0
    if len(found) > 1:
        cp = prompts.choose(slots.paragraphs, slot, caption, images, [Path(c.image.path).stem for c in found],
                            True, chosen)
        best = best_free(model.choose(cp.prompt, list(cp.options)), range(len(found)))
    return _figure(found[best].image, caption, "library", found), images[best]
