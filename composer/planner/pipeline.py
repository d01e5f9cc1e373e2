"""compose(): request in, events out. write → segment → place → caption → select → assemble.

Each stage is one function of the run's context that yields its events and returns its result
(`result = yield from stage(run, ...)`). The CLI and the UI consume the same event stream and
hold no composition logic themselves.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from composer.article import Article, Block, Figure, Paragraph, paragraph_label
from composer.check import annotate
from composer.images import ImageError, LoadedImage, display_name, load_image
from composer.model.base import ChatModel, ModelError, TokenUsage
from composer.planner.caption import write_captions
from composer.planner.events import Event
from composer.planner.grounded import keep_supported_part, length_note, plan_parts, uses_materials_first
from composer.planner.place import candidates, place
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
from composer.planner.segment import drop_unfinished_sentence, outline_headings, segment
from composer.planner.select import (
    CandidateSource,
    Selection,
    Slots,
    from_library,
    from_uploads,
    match_photos,
    photos_first,
)
from composer.planner.true_captions import from_file_name, true_caption

if TYPE_CHECKING:
    from composer.imagegen.illustrate import Illustrator
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
    illustrator: Illustrator | None = None,
) -> Iterator[Event]:
    """`illustrator`: an image engine that draws a picture for each slot nothing else fills."""
    run = Run(request=request, model=model, encoder=encoder, library=library, uploads=tuple(uploads),
              seed=seed, prompts=prompts_for(model.dialect), usage=StageUsage(model.usage),
              descriptions=describe(encoder, uploads), illustrator=illustrator)
    text = yield from write(run)
    article = yield from segment_text(run, text)
    at = yield from place_pictures(run, article.paragraphs)
    photos = run.match_photos(article.paragraphs, at)
    slots = yield from caption_slots(run, article.paragraphs, at, photos or {})
    selection = yield from select_pictures(run, slots, photos)
    yield from assemble(run, article, slots, selection)


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
            spent = _usage_delta(self.mark, now)
            before = self.by_stage.get(self.current, {})
            self.by_stage[self.current] = {k: before.get(k, 0) + v for k, v in spent.items()}
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
    descriptions: tuple[str, ...] = ()  # of each upload, in words ("" where the encoder cannot say)
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    illustrator: Illustrator | None = None
    generated_failed: dict[int, str] = field(default_factory=dict)  # slot → why the engine gave no picture

    def match_photos(self, paragraphs: Sequence[Paragraph], at: tuple[int, ...]) -> dict[int, int] | None:
        """Uploads matched to slots by paragraph before captioning, where that is the rule (else None)."""
        if not self.uploads or self.encoder is None or not photos_first(self.model, self.prompts, self.encoder):
            return None
        return match_photos(paragraphs, at, self.uploads, self.encoder)

    @property
    def photos_in_words(self) -> tuple[str, ...]:
        """The writer's photos described to a model that cannot see them (else none)."""
        if self.model.sees_images or not any(self.descriptions):
            return ()
        return tuple(d or "(no description)" for d in self.descriptions)

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
    if english_only(request, model):
        # What it would write in Chinese is gibberish: say so before anything is written, and
        # build the article from the writer's own notes, or refuse when there are none.
        if not request.materials.strip():
            raise ModelError(f"{model.name} writes English only and the request has no notes to build a Chinese "
                             "article from: add materials, or use a model that writes Chinese "
                             "(--model xcomposer2, or openai:URL for a served one)")
        yield Event("warning", {"message": (
            f"{model.name} writes English only: this Chinese article is made of your own notes, arranged under "
            "your outline, and nothing is added. For Chinese prose use --model xcomposer2 or another model that "
            "writes Chinese.")})
    if english_only(request, model) or uses_materials_first(request, model.small):
        return (yield from write_from_materials(run))
    images_in_prompt = [u.image for u in run.uploads] if model.sees_images else []
    photos = run.photos_in_words
    sections = prompts.write_sections(request, photos) if model.small else None
    if sections:
        writes = [(p, section_sampling(request, len(sections), run.seed_for(100 + k))) for k, p in enumerate(sections)]
    else:
        writes = [(prompts.write(request, images_in_prompt, photos), write_sampling(request, run.seed_for(0)))]
    # Written part by part, each outline point is the heading over its part, in the writer's words.
    headings = [f"## {point}\n\n" for point in request.outline] if sections and request.use_headings else []
    parts: list[str] = []
    for k, (prompt, sampling) in enumerate(writes):
        if k:
            yield Event("text", {"delta": "\n\n"})
        part = headings[k] if headings else ""
        if part:
            yield Event("text", {"delta": part})
        for delta in model.stream(prompt, sampling):
            part += delta
            yield Event("text", {"delta": delta})
        parts.append(drop_unfinished_sentence(part))  # a part cut by its token budget
    return "\n\n".join(parts)


def english_only(request: ComposeRequest, model: ChatModel) -> bool:
    """A Chinese article asked of a small model with English instructions: it cannot write one."""
    return request.language == "zh" and model.dialect == "generic" and model.small


def write_from_materials(run: Run) -> Stage[str]:
    """Materials-first (composer/planner/grounded.py): each outline point written from its own
    passages, what the check finds unsupported dropped, the passages themselves where too little
    is left. The text streams as the model writes it; the article holds what was kept."""
    from composer.check import Grounding, Sources
    from composer.check.semantic import default_embedder

    request, model = run.request, run.model
    photos = run.photos_in_words
    grounding = Grounding.of(request.title, request.outline, request.materials, default_embedder(), photos)
    sources = Sources.of(request.title, request.outline, request.materials)
    note = length_note(request)
    if note:
        yield Event("warning", {"message": note})
    parts = plan_parts(request, grounding)
    empty = [part.point for part in parts if not part.passages]
    if empty:
        yield Event("warning", {"message": "Your notes say nothing about " + "; ".join(f"“{p}”" for p in empty)
                                + (": that part is" if len(empty) == 1 else ": those parts are")
                                + " left out. Add notes for it, or write it yourself."})
    parts = [part for part in parts if part.passages]
    headings = bool(request.outline) and request.use_headings and len(parts) > 1
    texts, dropped, stood_in = [], 0, 0
    for k, part in enumerate(parts):
        heading = f"## {part.point}\n\n" if headings else ""
        yield Event("text", {"delta": ("\n\n" if k else "") + heading})
        written = ""
        if not english_only(request, model):
            prompt = run.prompts.write_from_notes(request, part.point, part.notes, part.words, photos)
            words = max(part.words, 30)
            sampling = section_sampling(replace(request, length=words), 1, run.seed_for(100 + k))
            for delta in model.stream(prompt, sampling):
                written += delta
                yield Event("text", {"delta": delta})
        kept, n, joined = keep_supported_part(drop_unfinished_sentence(written), part, sources, grounding,
                                               request.title)
        dropped += n
        stood_in += joined and bool(kept)
        if kept:
            texts.append(heading + kept)
            if not written:
                yield Event("text", {"delta": kept})
    if dropped or stood_in:
        said = [f"left out {dropped} sentence{'s' * (dropped != 1)} your notes do not support"] if dropped else []
        if stood_in:
            said.append(f"used your own notes for {stood_in} of {len(parts)} part{'s' * (len(parts) != 1)}")
        yield Event("warning", {"message": "Kept to your notes: " + "; ".join(said) + "."})
    return "\n\n".join(texts)


def segment_text(run: Run, text: str) -> Stage[Article]:
    """The text as blocks; the outline and materials stand in when the model wrote nothing usable."""
    request = run.request
    yield run.stage("segment")
    paragraphs = segment(text, request.title)
    if request.use_headings:
        paragraphs = outline_headings(paragraphs, request.outline)
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
    # An image engine can fill any slot, as a library can.
    available = MAX_IMAGES if run.library is not None or run.illustrator is not None else len(run.uploads)
    count = run.request.image_count
    if available == 0 or count == 0:
        if count != 0:
            yield Event("warning", {"message": "no images given, no library and no image engine: "
                                               "the article has no pictures"})
        return ()
    if count != "auto" and count > available:
        yield Event("warning", {"message": f"asked for {count} pictures but only {available} images were given"})
        count = available
    if count == "auto" and run.uploads:
        # Every photo the writer gave is placed, at most one per paragraph.
        count = min(len(run.uploads), len(candidates(paragraphs)))
        if count == 0:
            return ()
    yield run.stage("place")
    if run.model.small and run.uploads and run.encoder is not None and count == min(len(run.uploads), count):
        # A small model's choice of paragraphs is close to random; the writer's photos go where
        # they match best (each photo to the paragraph its picture is nearest), the same rule
        # that then pairs photo and slot.
        matched = match_photos(with_headings(paragraphs), tuple(candidates(paragraphs)), run.uploads, run.encoder)
        if len(matched) == count:
            slots = tuple(sorted(matched))
            yield Event("slots", {"slots": list(slots)})
            return slots
    pp = run.prompts.place(paragraphs, count)
    answer = run.model.complete([pp.prompt], short_sampling(run.seed_for(1), max_new_tokens=32, stop=()))[0]
    placement = place(answer, paragraphs, count, pp.numbering, limit=available, index_map=pp.index_map)
    if placement.fallback:
        yield run.fallback("place", f"{placement.fallback}; the rule placed the pictures (model said {answer[:80]!r})")
    yield Event("slots", {"slots": list(placement.slots)})
    return placement.slots


def caption_slots(run: Run, paragraphs: Sequence[Paragraph], at: tuple[int, ...],
                  photos: Mapping[int, int]) -> Stage[Slots]:
    """A caption for each slot in the article's language, one complete phrase: written from its
    paragraph (and its photo's description where photos were matched first); a caption too long
    to use whole is asked again shorter, else the photo's description or the paragraph's first
    clause stands in. Where the encoder does not read the article's language, each slot also gets
    an English query for it (never shown)."""
    if not at:
        return Slots(paragraphs, (), ())
    yield run.stage("caption")
    language = run.request.language
    described = {slot: run.descriptions[i] for slot, i in photos.items() if i < len(run.descriptions)}
    if run.model.small:
        # A small model's captions are about the article or its instructions, not the photo: a
        # caption is made from what is known (composer/planner/true_captions.py), and the
        # paragraph's first clause is what the library is searched with.
        names = {slot: display_name(run.uploads[i].ref.path) for slot, i in photos.items() if i < len(run.uploads)}
        if language != "en":  # the encoder describes in English, file names are mostly English
            described, names = {}, {}
        captions = tuple(true_caption(paragraphs[slot].text, described.get(slot, ""), names.get(slot, ""))
                         for slot in at)
        for slot, caption in zip(at, captions):
            yield Event("caption", {"slot": slot, "caption": caption})
        return Slots(paragraphs, at, captions, captions)
    captions = yield from _captions(run, paragraphs, at, language, described, show=True)
    queries = captions
    if run.library is not None and not run.uploads and caption_language(language, run.encoder) != language:
        queries = yield from _captions(run, paragraphs, at, "en", described, show=False)
    return Slots(paragraphs, at, captions, queries)


def select_pictures(run: Run, slots: Slots, photos: Mapping[int, int] | None) -> Stage[Selection]:
    """A picture for each slot, from the writer's uploads (matched already where `photos`) or
    else the library; then, where neither gave one (nothing above the encoder's `min_match`),
    from the image engine when there is one."""
    if not slots.at:
        return {}
    yield run.stage("select")
    if run.uploads:
        selection = from_uploads(slots, run.uploads, model=run.model, prompts=run.prompts, encoder=run.encoder,
                                 photos=photos)
    elif run.library is not None:
        min_match = run.encoder.min_match if run.encoder is not None else None
        selection = from_library(slots, run.library, model=run.model, prompts=run.prompts, min_match=min_match)
    else:
        assert run.illustrator is not None  # place_pictures gives no slots without pictures to fill them
        selection = {}
    if run.model.small and run.request.language == "en":
        selection = {slot: _truly_captioned(run, slots.paragraphs[slot].text, figure)
                     for slot, figure in selection.items()}
    for slot, caption in zip(slots.at, slots.captions):
        figure = selection.get(slot)
        if figure is not None and figure.image is not None:
            yield Event("figure", {"slot": slot, "figure": figure})
        elif run.illustrator is None:
            where = paragraph_label(slots.paragraphs, slot)
            yield Event("warning", {"message": f"no picture matches the caption after {where} "
                                               f"({caption!r}); the slot is left empty"})
    if run.illustrator is not None:
        selection = yield from generate_pictures(run, slots, selection, run.illustrator)
    return selection


def generate_pictures(run: Run, slots: Slots, selection: Selection, illustrator: Illustrator) -> Stage[Selection]:
    """A generated picture for each slot still empty, prompted from its caption (its English
    query for a Chinese one), the article's title and style, seeded from the request's seed and
    the slot. A failure leaves that slot empty with the engine's reason and the others go on:
    the article is never lost over a picture."""
    from composer.imagegen import ImageGenError
    from composer.imagegen.illustrate import prompt_for, slot_seed

    empty = [(slot, caption, query) for slot, caption, query in zip(slots.at, slots.captions, slots.queries)
             if selection.get(slot) is None or selection[slot].image is None]
    if not empty:
        return selection
    yield run.stage("generate")
    out = dict(selection)
    for k, (slot, caption, query) in enumerate(empty):
        where = paragraph_label(slots.paragraphs, slot)
        yield Event("generating", {"slot": slot, "of": len(empty), "number": k + 1})
        prompt = prompt_for(caption, run.request.title, run.request.style, query, _section(slots.paragraphs, slot))
        try:
            ref, generated = illustrator.illustrate(prompt, slot_seed(run.seed, slot))
        except (ImageGenError, ImageError, OSError) as exc:
            reason = str(exc)
            run.generated_failed[slot] = reason
            yield Event("warning", {"message": f"no picture was generated after {where}: {reason}; "
                                               "the slot is left empty"})
            # An empty slot the writer can Generate again in the editor.
            out.setdefault(slot, Figure(image=None, caption=caption, alt=caption, source="none"))
            continue
        before = out.get(slot)
        out[slot] = Figure(image=ref, caption=caption, alt=caption, source="generated",
                           candidates=before.candidates if before is not None else (), generated=generated)
        yield Event("figure", {"slot": slot, "figure": out[slot]})
    return out


def _section(paragraphs: Sequence[Paragraph], slot: int) -> str:
    """The heading a paragraph is under ("" when none): what its part of the article is about."""
    return next((p.text for p in reversed(paragraphs[: slot + 1]) if p.is_heading), "")


def with_headings(paragraphs: Sequence[Paragraph]) -> list[Paragraph]:
    """Each paragraph with its section's heading in front: what a part is about is said there."""
    out, heading = [], ""
    for p in paragraphs:
        if p.is_heading:
            heading = p.text
        out.append(p if p.is_heading or not heading else replace(p, text=f"{heading}. {p.text}"))
    return out


def _truly_captioned(run: Run, paragraph: str, figure: Figure) -> Figure:
    """A small model's figure, captioned by what its picture is known to show: the upload's
    description, a library picture's file name, else the encoder's description of it."""
    if figure.image is None:
        return figure
    described = dict(zip((u.ref.sha256 for u in run.uploads), run.descriptions))
    description = described.get(figure.image.sha256, "")
    name = display_name(figure.image.path)
    if not description and figure.source == "library" and from_file_name(name) is None and run.encoder is not None:
        try:
            description = next(iter(run.encoder.describe([load_image(figure.image.path).image])), "")
        except ImageError:
            description = ""
    caption = true_caption(paragraph, description, name)
    return replace(figure, caption=caption, alt=caption)


def assemble(run: Run, article: Article, slots: Slots, selection: Selection) -> Stage[None]:
    """The finished article: each figure after its paragraph, with the run's accounting and what
    became of each upload (a photo that could not be placed is listed with the reason)."""
    # An English query sent to an encoder that reads only English is kept, never shown.
    query = {slot: q for slot, c, q in zip(slots.at, slots.captions, slots.queries) if q != c}
    blocks: list[Block] = []
    for i, p in enumerate(article.blocks):
        blocks.append(p)
        if i in selection:
            blocks.append(replace(selection[i], query=query.get(i, "")))
    uploads = _upload_report(run, article, blocks)
    for entry in uploads:
        if entry["block"] is None:
            yield Event("warning", {"message": f"photo {entry['name']} is not in the article: {entry['reason']}"})
    run.usage.enter("done")
    usage = run.usage.summary()
    metadata = {**article.metadata, "fallbacks": run.fallbacks, "usage": usage,
                "encoder": run.encoder.name if run.encoder is not None else None}
    if uploads:
        metadata["uploads"] = uploads
    if run.illustrator is not None:
        metadata["imagegen"] = {"engine": run.illustrator.generator.name, "failed": [
            {"where": f"after {paragraph_label(slots.paragraphs, slot)}", "reason": reason}
            for slot, reason in run.generated_failed.items()]}
    # What each picture is known to show, so that its caption is checked against that too.
    described = dict(zip((u.ref.sha256 for u in run.uploads), run.descriptions))
    descriptions = {b.image.sha256: described[b.image.sha256] for b in blocks
                    if isinstance(b, Figure) and b.image is not None and described.get(b.image.sha256)}
    if descriptions:
        metadata["descriptions"] = descriptions
    # The claims the materials do not support travel with the article (composer.check).
    yield Event("done", {"article": annotate(Article(article.title, tuple(blocks), metadata)), "usage": usage})


# --- helpers ---------------------------------------------------------------------------------
def describe(encoder: ImageTextEncoder | None, uploads: Sequence[LoadedImage]) -> tuple[str, ...]:
    """Each upload in words, from the encoder ("" for each when there is none)."""
    if encoder is None or not uploads:
        return ("",) * len(uploads)
    words = list(encoder.describe([u.image for u in uploads]))
    return tuple((words + [""] * len(uploads))[: len(uploads)])


def _captions(run: Run, paragraphs: Sequence[Paragraph], at: tuple[int, ...], language: Language,
              described: Mapping[int, str], show: bool) -> Stage[tuple[str, ...]]:
    """Captions to show (with events) or English queries for the encoder (silent)."""
    sampling = caption_sampling(run.prompts, run.seed_for(2 if show else 3))
    captions: list[str] = []
    for slot, written in zip(at, write_captions(run.model, run.prompts, paragraphs, at, language, described,
                                                sampling)):
        if show and written.fallback:
            yield run.fallback("caption", written.fallback)
        captions.append(written.caption)
        if show:
            yield Event("caption", {"slot": slot, "caption": written.caption})
    return tuple(captions)


def _upload_report(run: Run, article: Article, blocks: Sequence[Block]) -> list[dict]:
    at_block = {b.image.sha256: i for i, b in enumerate(blocks) if isinstance(b, Figure) and b.image is not None}
    room = len(candidates(article.paragraphs))
    count = run.request.image_count
    report = []
    for upload, description in zip(run.uploads, run.descriptions):
        block = at_block.get(upload.ref.sha256)
        if block is not None:
            reason = ""
        elif count != "auto" and count < len(run.uploads):
            reason = f"the request asks for {count} picture{'s' if count != 1 else ''}"
        elif room < len(run.uploads):
            reason = f"the article has {room} paragraph{'s' if room != 1 else ''} for {len(run.uploads)} photos"
        else:
            reason = "no paragraph was matched to it"
        report.append({"name": Path(upload.ref.path).name, "sha256": upload.ref.sha256, "block": block,
                       "reason": reason, "description": description})
    return report


def caption_language(article_language: Language, encoder: ImageTextEncoder | None) -> Language:
    """Captions go to the encoder as queries: write them in a language it reads."""
    if encoder is None:
        return article_language
    return article_language if article_language in encoder.languages else "en"


def _usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
