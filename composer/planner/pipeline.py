"""compose(): request in, events out. write → segment → place → caption → select.

The CLI and the UI consume the same event stream and hold no composition logic themselves.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from composer.article import Article, Candidate, Figure, Paragraph
from composer.images import LoadedImage
from composer.model.base import ChatModel
from composer.planner.caption import caption_from_paragraph, parse_caption
from composer.planner.events import Event
from composer.planner.place import place
from composer.planner.prompts import prompts_for, short_sampling, write_sampling
from composer.planner.request import MAX_IMAGES, ComposeRequest
from composer.planner.segment import segment
from composer.planner.select import CandidateSource, assign, greedy_by_scores

LIBRARY_TOP_K = 4


def compose(
    request: ComposeRequest,
    model: ChatModel,
    encoder: Any | None = None,
    library: CandidateSource | None = None,
    *,
    uploads: Sequence[LoadedImage] = (),
    seed: int | None = None,
) -> Iterator[Event]:
    prompts = prompts_for(model.dialect)
    usage_before = model.usage.snapshot()
    fallbacks: list[dict[str, str]] = []

    def fallback(step: str, reason: str) -> Event:
        fallbacks.append({"step": step, "reason": reason})
        return Event("fallback", {"step": step, "reason": reason})

    # --- write ---------------------------------------------------------------------------
    yield Event("stage", {"stage": "write"})
    if request.language == "zh" and model.dialect == "generic" and getattr(model, "small", False):
        yield Event("warning", {"message": f"{model.name} is a small English model; its Chinese will be poor"})
    images_in_prompt = [u.image for u in uploads] if model.sees_images else []
    text = ""
    for delta in model.stream(prompts.write(request, images_in_prompt), write_sampling(request, _seed(seed, 0))):
        text += delta
        yield Event("text", {"delta": delta})

    yield Event("stage", {"stage": "segment"})
    paragraphs = segment(text, request.title)
    if not any(not p.is_heading for p in paragraphs):
        yield fallback("write", "the model wrote no usable text; the article holds the outline and materials")
        paragraphs = [Paragraph(s) for s in (*request.outline, request.materials) if s.strip()] or [Paragraph(request.title)]
    metadata = {
        "model": model.name,
        "dialect": model.dialect,
        "seed": seed,
        "request": request.to_dict(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    article = Article(request.title, tuple(paragraphs), metadata)
    yield Event("segments", {"article": article})

    # --- place ---------------------------------------------------------------------------
    available = MAX_IMAGES if library is not None else len(uploads)
    count = request.image_count
    slots: tuple[int, ...] = ()
    if available == 0 or count == 0:
        if count != 0:
            yield Event("warning", {"message": "no images given and no library: the article has no pictures"})
    else:
        if count != "auto" and count > available:
            yield Event("warning", {"message": f"asked for {count} pictures but only {available} images were given"})
            count = available
        yield Event("stage", {"stage": "place"})
        pp = prompts.place(paragraphs, count)
        answer = model.complete([pp.prompt], short_sampling(_seed(seed, 1), max_new_tokens=32, stop=()))[0]
        placement = place(answer, paragraphs, count, pp.numbering, limit=available, index_map=pp.index_map)
        if placement.fallback:
            yield fallback("place", f"{placement.fallback}; the rule placed the pictures (model said {answer[:80]!r})")
        slots = placement.slots
        yield Event("slots", {"slots": list(slots)})

    # --- caption -------------------------------------------------------------------------
    captions: list[str] = []
    if slots:
        yield Event("stage", {"stage": "caption"})
        for slot, answer in zip(slots, _caption_answers(model, prompts, paragraphs, slots, seed)):
            caption = parse_caption(answer, prompts.caption_quote)
            if caption is None:
                caption = caption_from_paragraph(paragraphs[slot].text)
                yield fallback("caption", f"paragraph {slot}: unusable caption {answer[:60]!r}; used its first sentence")
            captions.append(caption)
            yield Event("caption", {"slot": slot, "caption": caption})

    # --- select --------------------------------------------------------------------------
    figures: dict[int, Figure] = {}
    if slots:
        yield Event("stage", {"stage": "select"})
        if uploads:
            picks = _assign_uploads(model, prompts, paragraphs, slots, captions, uploads, encoder)
            for slot, caption, pick in zip(slots, captions, picks):
                if pick is not None:
                    figures[slot] = Figure(uploads[pick].ref, caption, caption, "upload")
        else:
            used: list[str] = []
            for slot, caption in zip(slots, captions):
                fig = _pick_from_library(model, prompts, paragraphs, slot, caption, library, used)
                if fig.image is not None:
                    used.append(fig.image.sha256)
                figures[slot] = fig
        for slot in slots:
            if slot in figures:
                yield Event("figure", {"slot": slot, "figure": figures[slot]})
            else:
                yield Event("warning", {"message": f"no image left for the picture after paragraph {slot}"})

    blocks: list = []
    for i, p in enumerate(paragraphs):
        blocks.append(p)
        if i in figures:
            blocks.append(figures[i])
    usage = _usage_delta(usage_before, model.usage.snapshot())
    article = Article(request.title, tuple(blocks),
                      {**metadata, "fallbacks": fallbacks, "usage": usage,
                       "encoder": getattr(encoder, "name", None)})
    yield Event("done", {"article": article, "usage": usage})


def _seed(seed: int | None, step: int) -> int | None:
    # Each step gets its own seed so that a change in one step does not shift the others.
    return None if seed is None else seed * 1000 + step


def _caption_answers(model: ChatModel, prompts, paragraphs, slots, seed) -> Iterator[str]:
    sampling = short_sampling(_seed(seed, 2), max_new_tokens=40,
                              stop=("\n",) + ((prompts.caption_quote,) if prompts.caption_quote else ()))
    if getattr(prompts, "chained_captions", False):
        past: list[tuple[int, str]] = []
        for slot in slots:
            answer = model.complete([prompts.caption(paragraphs, slot, past)], sampling)[0]
            past.append((slot, parse_caption(answer, prompts.caption_quote) or caption_from_paragraph(paragraphs[slot].text)))
            yield answer
    else:
        yield from model.complete([prompts.caption(paragraphs, slot) for slot in slots], sampling)


def _assign_uploads(model, prompts, paragraphs, slots, captions, uploads, encoder) -> list[int | None]:
    if encoder is not None:
        text_vecs = encoder.encode_texts(list(captions))
        image_vecs = encoder.encode_images([u.image for u in uploads])
        return assign(np.asarray(text_vecs) @ np.asarray(image_vecs).T)
    # No encoder: ask the model, slot by slot, among the images still free.
    used: set[int] = set()
    scores_per_slot: list[list[float]] = []
    for slot, caption in zip(slots, captions):
        free = [i for i in range(len(uploads)) if i not in used]
        if not free:
            scores_per_slot.append([float("-inf")] * len(uploads))
            continue
        cp = prompts.choose(paragraphs[: slot + 1], slot, caption, [uploads[i].image for i in free],
                            [Path(uploads[i].ref.path).stem for i in free], model.sees_images)
        free_scores = model.choose(cp.prompt, list(cp.options))
        scores = [float("-inf")] * len(uploads)
        for i, s in zip(free, free_scores):
            scores[i] = s
        best = max(free, key=lambda i: (scores[i], -i))
        used.add(best)
        scores_per_slot.append(scores)
    return greedy_by_scores(scores_per_slot, len(uploads))


def _pick_from_library(model, prompts, paragraphs, slot, caption, library, used) -> Figure:
    found: list[Candidate] = library.candidates(caption, LIBRARY_TOP_K, exclude_hashes=used)
    found = [c for c in found if c.image.sha256 not in used]
    if not found:
        return Figure(None, caption, caption, "none")
    best = 0
    if model.sees_images and len(found) > 1:
        from composer.images import load_image

        imgs = [load_image(c.image.path).image for c in found]
        cp = prompts.choose(paragraphs[: slot + 1], slot, caption, imgs,
                            [Path(c.image.path).stem for c in found], True)
        scores = model.choose(cp.prompt, list(cp.options))
        best = max(range(len(found)), key=lambda i: (scores[i], -i))
    return Figure(found[best].image, caption, caption, "library", tuple(found))


def _usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
