"""compose(): request in, events out. write → segment → place → caption → select.

The CLI and the UI consume the same event stream and hold no composition logic themselves.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from composer.article import Article, Candidate, Figure, Paragraph
from composer.images import ImageError, LoadedImage, load_image
from composer.model.base import ChatModel
from composer.planner.caption import caption_from_paragraph, parse_caption
from composer.planner.events import Event
from composer.planner.place import place
from composer.planner.prompts import prompts_for, section_sampling, short_sampling, write_sampling
from composer.planner.request import MAX_IMAGES, ComposeRequest
from composer.planner.segment import drop_unfinished_sentence, segment
from composer.planner.select import CandidateSource, assign, best_free

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
    by_stage: dict[str, dict[str, int]] = {}
    stage_start = [("write", usage_before)]

    def stage(name: str) -> Event:
        # Tokens are attributed to the stage that ran them, for the done event's breakdown.
        prev_name, prev = stage_start[0]
        now = model.usage.snapshot()
        if prev_name != name:
            by_stage[prev_name] = _usage_delta(prev, now)
            stage_start[0] = (name, now)
        return Event("stage", {"stage": name})

    def fallback(step: str, reason: str) -> Event:
        fallbacks.append({"step": step, "reason": reason})
        return Event("fallback", {"step": step, "reason": reason})

    # --- write ---------------------------------------------------------------------------
    yield stage("write")
    if request.language == "zh" and model.dialect == "generic" and getattr(model, "small", False):
        yield Event("warning", {"message": f"{model.name} is a small English model; its Chinese will be poor"})
    images_in_prompt = [u.image for u in uploads] if model.sees_images else []
    sections = prompts.write_sections(request) if getattr(model, "small", False) else None
    if sections:
        writes = [(p, section_sampling(request, len(sections), _seed(seed, 100 + k))) for k, p in enumerate(sections)]
    else:
        writes = [(prompts.write(request, images_in_prompt), write_sampling(request, _seed(seed, 0)))]
    parts: list[str] = []
    for k, (prompt, sampling) in enumerate(writes):
        if k:
            yield Event("text", {"delta": "\n\n"})
        part = ""
        for delta in model.stream(prompt, sampling):
            part += delta
            yield Event("text", {"delta": delta})
        parts.append(drop_unfinished_sentence(part))  # a part cut by its token budget
    text = "\n\n".join(parts)

    yield stage("segment")
    paragraphs = segment(text, request.title)
    if not any(not p.is_heading for p in paragraphs):
        yield fallback("write", "the model wrote no usable text; the article holds the outline and materials")
        paragraphs = [Paragraph(s) for s in (*request.outline, request.materials) if s.strip()] or [Paragraph(request.title)]
    metadata = {
        "model": model.name,
        "dialect": model.dialect,
        "seed": seed,
        "language": request.language,
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
        yield stage("place")
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
        yield stage("caption")
        language = caption_language(request.language, encoder)
        if language != request.language:
            yield Event("warning", {"message": f"captions are written in English so that the encoder "
                                               f"{getattr(encoder, 'name', '')} can match them; use a "
                                               "multilingual encoder for Chinese captions"})
        for slot, answer in zip(slots, _caption_answers(model, prompts, paragraphs, slots, language, seed)):
            caption = parse_caption(answer, prompts.caption_quote)
            if caption is None:
                caption = caption_from_paragraph(paragraphs[slot].text)
                yield fallback("caption", f"paragraph {slot}: unusable caption {answer[:60]!r}; used its first sentence")
            captions.append(caption)
            yield Event("caption", {"slot": slot, "caption": caption})

    # --- select --------------------------------------------------------------------------
    figures: dict[int, Figure] = {}
    if slots:
        yield stage("select")
        if uploads:
            picks = _assign_uploads(model, prompts, paragraphs, slots, captions, uploads, encoder)
            for slot, caption, pick in zip(slots, captions, picks):
                if pick is not None:
                    figures[slot] = Figure(uploads[pick].ref, caption, caption, "upload")
        elif not model.sees_images:
            figures = _assign_from_library(slots, captions, library, getattr(encoder, "min_match", None))
        else:
            chosen: dict[int, Image.Image] = {}
            for slot, caption in zip(slots, captions):
                fig, image = _pick_from_library(model, prompts, paragraphs, slot, caption, library,
                                                [f.image.sha256 for f in figures.values() if f.image], chosen,
                                                getattr(encoder, "min_match", None))
                if image is not None:
                    chosen[slot] = image
                figures[slot] = fig
        for slot in slots:
            if slot in figures and figures[slot].image is not None:
                yield Event("figure", {"slot": slot, "figure": figures[slot]})
            else:
                yield Event("warning", {"message": f"no picture matches the caption for paragraph {slot + 1} "
                                                   f"({captions[slots.index(slot)]!r}); the slot is left empty"})

    blocks: list = []
    for i, p in enumerate(paragraphs):
        blocks.append(p)
        if i in figures:
            blocks.append(figures[i])
    stage("done")
    usage = {**_usage_delta(usage_before, model.usage.snapshot()), "by_stage": by_stage}
    article = Article(request.title, tuple(blocks),
                      {**metadata, "fallbacks": fallbacks, "usage": usage,
                       "encoder": getattr(encoder, "name", None)})
    yield Event("done", {"article": article, "usage": usage})


def _seed(seed: int | None, step: int) -> int | None:
    # Each step gets its own seed so that a change in one step does not shift the others.
    return None if seed is None else seed * 1000 + step


def caption_language(article_language: str, encoder: Any | None) -> str:
    """Captions go to the encoder as queries: write them in a language it reads. Encoders say
    which they read (`languages`); one that does not say is taken to read English only."""
    if encoder is None:
        return article_language
    return article_language if article_language in getattr(encoder, "languages", ("en",)) else "en"


def _caption_answers(model: ChatModel, prompts, paragraphs, slots, language, seed) -> Iterator[str]:
    sampling = short_sampling(_seed(seed, 2), max_new_tokens=40,
                              stop=("\n",) + ((prompts.caption_quote,) if prompts.caption_quote else ()))
    if prompts.chained_captions:
        # Each caption prompt lists the captions before it, so they are asked one at a time.
        past: list[tuple[int, str]] = []
        for slot in slots:
            answer = model.complete([prompts.caption(paragraphs, slot, past, language)], sampling)[0]
            past.append((slot, parse_caption(answer, prompts.caption_quote) or caption_from_paragraph(paragraphs[slot].text)))
            yield answer
    else:
        yield from model.complete([prompts.caption(paragraphs, slot, (), language) for slot in slots], sampling)


def _assign_uploads(model, prompts, paragraphs, slots, captions, uploads, encoder) -> list[int | None]:
    if encoder is not None and not model.sees_images:
        text_vecs = encoder.encode_texts(list(captions))
        image_vecs = encoder.encode_images([u.image for u in uploads])
        return assign(np.asarray(text_vecs) @ np.asarray(image_vecs).T)
    # The model chooses, slot by slot, among the images still free: by looking at them when it
    # sees images (the reference protocol), else by their file names.
    picks: list[int | None] = []
    chosen: dict[int, Image.Image] = {}
    for slot, caption in zip(slots, captions):
        free = [i for i in range(len(uploads)) if i not in picks]
        if not free:
            picks.append(None)
            continue
        cp = prompts.choose(paragraphs, slot, caption, [uploads[i].image for i in free],
                            [Path(uploads[i].ref.path).stem for i in free], model.sees_images, chosen)
        scores = dict(zip(free, model.choose(cp.prompt, list(cp.options))))
        best = free[best_free([scores[i] for i in free], range(len(free)))]
        picks.append(best)
        chosen[slot] = uploads[best].image
    return picks


def _assign_from_library(slots, captions, library, min_match=None) -> dict[int, Figure]:
    """Library pictures for all slots at once: each caption's top matches, then the assignment
    that maximises total score with no picture used twice (slot by slot, an early caption could
    take the one picture a later caption needed)."""
    found = [library.candidates(c, len(slots) + LIBRARY_TOP_K) for c in captions]
    pool = list({c.image.sha256: c.image for cands in found for c in cands}.values())
    column = {ref.sha256: j for j, ref in enumerate(pool)}
    scores = np.full((len(slots), len(pool)), -1e9)
    for i, cands in enumerate(found):
        for c in cands:
            scores[i, column[c.image.sha256]] = c.score
    picks = assign(scores) if pool else [None] * len(slots)
    figures = {}
    for slot, caption, cands, pick in zip(slots, captions, found, picks):
        keep = tuple(cands[:LIBRARY_TOP_K])
        if pick is None or scores[slots.index(slot), pick] <= -1e9 or (
                min_match is not None and scores[slots.index(slot), pick] < min_match):
            figures[slot] = Figure(None, caption, caption, "none", keep)
            continue
        ref = pool[pick]
        if all(c.image.sha256 != ref.sha256 for c in keep):
            keep = (next(c for c in cands if c.image.sha256 == ref.sha256),) + keep[: LIBRARY_TOP_K - 1]
        figures[slot] = Figure(ref, caption, caption, "library", keep)
    return figures


def _pick_from_library(model, prompts, paragraphs, slot, caption, library, used, chosen, min_match=None):
    """For a model that sees images: it chooses among the top unused library matches, shown as
    images (the reference protocol). Returns the figure (its candidates kept for swapping) and
    the chosen image. Below the encoder's `min_match` a picture would be unrelated (a cat in a
    space article): the slot stays empty, its candidates kept for the writer to pick from."""
    found: list[Candidate] = [c for c in library.candidates(caption, LIBRARY_TOP_K, exclude_hashes=used)
                              if c.image.sha256 not in used]
    if not found or (min_match is not None and found[0].score < min_match):
        return Figure(None, caption, caption, "none", tuple(found)), None
    loaded = []
    for c in found:  # a library file may have gone or gone bad since it was indexed
        try:
            loaded.append((c, load_image(c.image.path).image))
        except ImageError:
            continue
    if not loaded:
        return Figure(None, caption, caption, "none", tuple(found)), None
    found, imgs = [c for c, _ in loaded], [img for _, img in loaded]
    best = 0
    if len(found) > 1:
        cp = prompts.choose(paragraphs, slot, caption, imgs, [Path(c.image.path).stem for c in found], True, chosen)
        best = best_free(model.choose(cp.prompt, list(cp.options)), range(len(found)))
    return Figure(found[best].image, caption, caption, "library", tuple(found)), imgs[best]


def _usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
