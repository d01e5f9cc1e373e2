"""compose(): request in, events out. write → segment → place → caption → select → assemble.

Each stage is one function of the run's context that yields its events and returns its result
(`result = yield from stage(run, ...)`). The CLI and the UI consume the same event stream and
hold no composition logic themselves.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from composer.article import Article, Block, Paragraph
from composer.images import LoadedImage
from composer.model.base import ChatModel, TokenUsage
from composer.planner.caption import caption_from_paragraph, parse_caption
from composer.planner.events import Event
from composer.planner.place import place
from composer.planner.prompts import (
    Language,
    Prompts,
    caption_sampling,
    prompts_for,
    section_sampling,
    short_sampling,
    write_sampling,
)
from composer.planner.request import MAX_IMAGES, ComposeRequest
from composer.planner.segment import drop_unfinished_sentence, segment
from composer.planner.select import CandidateSource, Selection, Slots, from_library, from_uploads

if TYPE_CHECKING:
    from composer.retrieval.encoder import ImageTextEncoder

T = TypeVar("T")
Stage = Generator[Event, None, T]  # a stage yields its events and returns its result


def compose(
    request: ComposeRequest,
    model: ChatModel,
    encoder: ImageTextEncoder | None = None,
    library: CandidateSource | None = None,
    *,
    uploads: Sequence[LoadedImage] = (),
    seed: int | None = None,
) -> Iterator[Event]:
    run = Run(request=request, model=model, encoder=encoder, library=library, uploads=tuple(uploads),
              seed=seed, prompts=prompts_for(model.dialect), usage=StageUsage(model.usage))
    text = yield from write(run)
    article = yield from segment_text(run, text)
    at = yield from place_pictures(run, article.paragraphs)
    slots = yield from caption_slots(run, article.paragraphs, at)
    selection = yield from select_pictures(run, slots)
    yield assemble(run, article, selection)


# --- the run's context -------------------------------------------------------------------------
@dataclass
class StageUsage:
    """Tokens attributed to the stage that ran them, for the done event's breakdown."""

    usage: TokenUsage
    current: str = "write"
    by_stage: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = self.mark = self.usage.snapshot()

    def enter(self, name: str) -> None:
        now = self.usage.snapshot()
        if name != self.current:
            self.by_stage[self.current] = _usage_delta(self.mark, now)
            self.current, self.mark = name, now

    def summary(self) -> dict:
        return {**_usage_delta(self.start, self.usage.snapshot()), "by_stage": self.by_stage}


@dataclass
class Run:
    request: ComposeRequest
    model: ChatModel
    encoder: ImageTextEncoder | None
    library: CandidateSource | None
    uploads: tuple[LoadedImage, ...]
    seed: int | None
    prompts: Prompts
    usage: StageUsage
    fallbacks: list[dict[str, str]] = field(default_factory=list)

    def stage(self, name: str) -> Event:
        self.usage.enter(name)
        return Event("stage", {"stage": name})

    def fallback(self, step: str, reason: str) -> Event:
        self.fallbacks.append({"step": step, "reason": reason})
        return Event("fallback", {"step": step, "reason": reason})

    def seed_for(self, step: int) -> int | None:
        # Each step gets its own seed so that a change in one step does not shift the others.
        return None if self.seed is None else self.seed * 1000 + step


# --- stages ----------------------------------------------------------------------------------
def write(run: Run) -> Stage[str]:
    """The article's text, streamed: in one go, or one outline point at a time for small models."""
    request, model, prompts = run.request, run.model, run.prompts
    yield run.stage("write")
    if request.language == "zh" and model.dialect == "generic" and model.small:
        yield Event("warning", {"message": f"{model.name} is a small English model; its Chinese will be poor"})
    images_in_prompt = [u.image for u in run.uploads] if model.sees_images else []
    sections = prompts.write_sections(request) if model.small else None
    if sections:
        writes = [(p, section_sampling(request, len(sections), run.seed_for(100 + k))) for k, p in enumerate(sections)]
    else:
        writes = [(prompts.write(request, images_in_prompt), write_sampling(request, run.seed_for(0)))]
    parts: list[str] = []
    for k, (prompt, sampling) in enumerate(writes):
        if k:
            yield Event("text", {"delta": "\n\n"})
        part = ""
        for delta in model.stream(prompt, sampling):
            part += delta
            yield Event("text", {"delta": delta})
        parts.append(drop_unfinished_sentence(part))  # a part cut by its token budget
    return "\n\n".join(parts)


def segment_text(run: Run, text: str) -> Stage[Article]:
    """The text as blocks; the outline and materials stand in when the model wrote nothing usable."""
    request = run.request
    yield run.stage("segment")
    paragraphs = segment(text, request.title)
    if not any(not p.is_heading for p in paragraphs):
        yield run.fallback("write", "the model wrote no usable text; the article holds the outline and materials")
        paragraphs = ([Paragraph(s) for s in (*request.outline, request.materials) if s.strip()]
                      or [Paragraph(request.title)])
    metadata = {
        "model": run.model.name,
        "dialect": run.model.dialect,
        "seed": run.seed,
        "language": request.language,
        "request": request.to_dict(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    article = Article(request.title, tuple(paragraphs), metadata)
    yield Event("segments", {"article": article})
    return article


def place_pictures(run: Run, paragraphs: Sequence[Paragraph]) -> Stage[tuple[int, ...]]:
    """Which paragraphs get a picture (indices into `paragraphs`)."""
    available = MAX_IMAGES if run.library is not None else len(run.uploads)
    count = run.request.image_count
    if available == 0 or count == 0:
        if count != 0:
            yield Event("warning", {"message": "no images given and no library: the article has no pictures"})
        return ()
    if count != "auto" and count > available:
        yield Event("warning", {"message": f"asked for {count} pictures but only {available} images were given"})
        count = available
    yield run.stage("place")
    pp = run.prompts.place(paragraphs, count)
    answer = run.model.complete([pp.prompt], short_sampling(run.seed_for(1), max_new_tokens=32, stop=()))[0]
    placement = place(answer, paragraphs, count, pp.numbering, limit=available, index_map=pp.index_map)
    if placement.fallback:
        yield run.fallback("place", f"{placement.fallback}; the rule placed the pictures (model said {answer[:80]!r})")
    yield Event("slots", {"slots": list(placement.slots)})
    return placement.slots


def caption_slots(run: Run, paragraphs: Sequence[Paragraph], at: tuple[int, ...]) -> Stage[Slots]:
    """A caption for each slot, in a language the encoder reads (captions are its queries)."""
    if not at:
        return Slots(paragraphs, (), ())
    yield run.stage("caption")
    language = caption_language(run.request.language, run.encoder)
    if language != run.request.language:
        name = run.encoder.name if run.encoder is not None else ""
        yield Event("warning", {"message": f"captions are written in English so that the encoder {name} can "
                                           "match them; use a multilingual encoder for Chinese captions"})
    captions: list[str] = []
    for slot, answer in zip(at, _caption_answers(run, paragraphs, at, language)):
        caption = parse_caption(answer, run.prompts.caption_quote)
        if caption is None:
            caption = caption_from_paragraph(paragraphs[slot].text)
            yield run.fallback("caption",
                               f"paragraph {slot}: unusable caption {answer[:60]!r}; used its first sentence")
        captions.append(caption)
        yield Event("caption", {"slot": slot, "caption": caption})
    return Slots(paragraphs, at, tuple(captions))


def select_pictures(run: Run, slots: Slots) -> Stage[Selection]:
    """A picture for each slot, from the writer's uploads or else the library."""
    if not slots.at:
        return {}
    yield run.stage("select")
    if run.uploads:
        selection = from_uploads(slots, run.uploads, model=run.model, prompts=run.prompts, encoder=run.encoder)
    else:
        assert run.library is not None  # place_pictures gives no slots without pictures to fill them
        min_match = run.encoder.min_match if run.encoder is not None else None
        selection = from_library(slots, run.library, model=run.model, prompts=run.prompts, min_match=min_match)
    for slot, caption in zip(slots.at, slots.captions):
        figure = selection.get(slot)
        if figure is not None and figure.image is not None:
            yield Event("figure", {"slot": slot, "figure": figure})
        else:
            yield Event("warning", {"message": f"no picture matches the caption for paragraph {slot + 1} "
                                               f"({caption!r}); the slot is left empty"})
    return selection


def assemble(run: Run, article: Article, selection: Selection) -> Event:
    """The finished article: each figure after its paragraph, with the run's accounting."""
    blocks: list[Block] = []
    for i, p in enumerate(article.blocks):
        blocks.append(p)
        if i in selection:
            blocks.append(selection[i])
    run.usage.enter("done")
    usage = run.usage.summary()
    metadata = {**article.metadata, "fallbacks": run.fallbacks, "usage": usage,
                "encoder": run.encoder.name if run.encoder is not None else None}
    return Event("done", {"article": Article(article.title, tuple(blocks), metadata), "usage": usage})


# --- helpers ---------------------------------------------------------------------------------
def caption_language(article_language: Language, encoder: ImageTextEncoder | None) -> Language:
    """Captions go to the encoder as queries: write them in a language it reads."""
    if encoder is None:
        return article_language
    return article_language if article_language in encoder.languages else "en"


def _caption_answers(run: Run, paragraphs: Sequence[Paragraph], at: tuple[int, ...],
                     language: Language) -> Iterator[str]:
    prompts, model = run.prompts, run.model
    sampling = caption_sampling(prompts, run.seed_for(2))
    if prompts.chained_captions:
        # Each caption prompt lists the captions before it, so they are asked one at a time.
        past: list[tuple[int, str]] = []
        for slot in at:
            answer = model.complete([prompts.caption(paragraphs, slot, past, language)], sampling)[0]
            caption = parse_caption(answer, prompts.caption_quote) or caption_from_paragraph(paragraphs[slot].text)
            past.append((slot, caption))
            yield answer
    else:
        yield from model.complete([prompts.caption(paragraphs, slot, (), language) for slot in at], sampling)


def _usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
