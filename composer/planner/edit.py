"""Editing an article, paragraph by paragraph: each operation takes an Article and gives a new one.

Operations that ask the model (rewrite, expand, shorten, insert, add a picture) are generators
of the same events as `compose` — text deltas as the model writes, then `done` with the new
article — so the UI streams an edit like the first draft. The others return the new Article.
A failed edit raises EditError and leaves the article as it was (articles are immutable).
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from composer.article import Article, Block, Figure, Generated, ImageRef, Paragraph
from composer.check import Sources, annotate, check_article, grounding_of, keep_supported
from composer.images import LoadedImage
from composer.model.base import ChatModel, Prompt, Sampling
from composer.planner.caption import write_captions
from composer.planner.events import Event
from composer.planner.prompts import EditOp, Language, caption_sampling, edit_sampling, prompts_for
from composer.planner.segment import drop_unfinished_sentence, segment
from composer.planner.select import LIBRARY_TOP_K, CandidateSource, Slots, from_uploads, match_photos, photos_first

if TYPE_CHECKING:
    from composer.retrieval.encoder import ImageTextEncoder
# What a model puts around its answer rather than in it: a label ("Shortened:", "Here is the
# new paragraph:"), a note about the edit ("Your edit: …", "Note: …"), quotes around the whole.
_LABEL = re.compile(r"^\s*((new |rewritten |shortened |expanded |revised )?paragraph|rewritten|shortened|expanded|"
                    r"revised|rewrite|改写后|扩写后|缩写后|新段落|here(?:'s| is)[^:：\n]{0,60})\s*[:：]\s*",
                    re.IGNORECASE)
_NOTE = re.compile(r"^\s*(your (edit|version|paragraph|text)|edit|note|notes|original( paragraph| text)?|explanation|"
                   r"word count|changes?( made)?|注|说明|原文)\s*[:：(（]", re.IGNORECASE)
_QUOTES = (('"', '"'), ("“", "”"), ("「", "」"))


class EditError(ValueError):
    """An edit the writer asked for cannot be done; the message says why."""


# --- helpers ---------------------------------------------------------------------------------
def _language(article: Article) -> Language:
    return "zh" if (article.metadata.get("request") or {}).get("language") == "zh" else "en"


def _paragraph_at(article: Article, index: int) -> Paragraph:
    block = article.blocks[index] if 0 <= index < len(article.blocks) else None
    if not isinstance(block, Paragraph):
        raise EditError(f"block {index} is not a paragraph")
    return block


def _figure_at(article: Article, index: int) -> Figure:
    block = article.blocks[index] if 0 <= index < len(article.blocks) else None
    if not isinstance(block, Figure):
        raise EditError(f"block {index} is not a picture")
    return block


def _splice(article: Article, start: int, stop: int, new: Sequence[Block]) -> Article:
    """Every edit ends here: the new blocks, and the claims check recomputed for them."""
    blocks = list(article.blocks)
    blocks[start:stop] = list(new)
    return annotate(article.with_blocks(blocks))


def _used_hashes(article: Article, skip: int | None = None) -> list[str]:
    return [b.image.sha256 for i, b in enumerate(article.blocks)
            if isinstance(b, Figure) and b.image is not None and i != skip]


def _stream_paragraphs(model: ChatModel, prompt, sampling) -> Iterator[Event | list[Paragraph]]:
    """Stream the model's text as events, then give the paragraphs it wrote (last item)."""
    text = ""
    for delta in model.stream(prompt, sampling):
        text += delta
        yield Event("text", {"delta": delta})
    yield clean_answer(text)


def _unquote(text: str) -> str:
    """The text without quotes the model put around it: a pair around the whole, or one
    opening or closing quote that has no partner (a quotation inside the text stays)."""
    text = text.strip()
    for open_, close in _QUOTES:
        if open_ == close:
            balanced, around = text.count(open_) % 2 == 0, text.count(open_) == 2
        else:
            balanced = text.count(open_) == text.count(close)
            around = text.count(open_) == 1 and text.count(close) == 1
        if len(text) > 1 and text.startswith(open_) and text.endswith(close) and around:
            text = text[1:-1].strip()
        elif text.startswith(open_) and not balanced:
            text = text[1:].strip()
        elif text.endswith(close) and not balanced:
            text = text[:-1].strip()
    return text


def clean_answer(text: str) -> list[Paragraph]:
    """The paragraphs of an edit answer, without the model's labels, notes about its edit and
    the quotes it put around the text."""
    out: list[Paragraph] = []
    for p in segment(drop_unfinished_sentence(text).strip()):
        if p.is_heading:
            out.append(p)
            continue
        if _NOTE.match(p.text):
            continue
        cleaned = _unquote(_LABEL.sub("", p.text))
        if cleaned and not (cleaned.endswith((":", "：")) and len(cleaned.split()) <= 12):  # a lead-in line
            out.append(Paragraph(cleaned))
    return out


# --- text edits ------------------------------------------------------------------------------
def edit_paragraph(article: Article, index: int, op: EditOp, model: ChatModel, *, instruction: str = "",
                   materials: str = "", seed: int | None = None) -> Iterator[Event]:
    old = _paragraph_at(article, index)
    if old.is_heading:
        raise EditError("headings are edited by hand, not rewritten by the model")
    prompt = prompts_for(model.dialect).edit(op, old.text, materials, instruction, _language(article))
    words = len(old.text.split()) or len(old.text) // 2
    words = {"expand": words * 2, "shorten": max(words // 2, 20)}.get(op, words)
    # A shortened paragraph is one paragraph: what follows the first is the model talking.
    events = _replace_paragraph(article, index, model, prompt, edit_sampling(words, seed), one=op == "shorten")
    yield from _vetted(op, article, index, events)


def _vetted(op: EditOp, article: Article, index: int, events: Iterator[Event]) -> Iterator[Event]:
    """A model edit, checked before it replaces anything: text about the article is dropped, and
    so is a new sentence the materials do not support (an article written from materials); what
    is left must do what was asked (Shorten shorter, Expand longer, Rewrite different), or the
    edit is refused and the writer told why. Nothing changes then."""
    old = _paragraph_at(article, index).text
    for event in events:
        if event.kind != "done":
            yield event
            continue
        new = event.data["article"]
        count = len(new.blocks) - len(article.blocks) + 1
        written = [b for b in new.blocks[index:index + count] if isinstance(b, Paragraph)]
        kept = [replace(p, text=_held(p.text, old, article)) if not p.is_heading else p for p in written]
        kept = [p for p in kept if p.text]
        before, after = _size(old), sum(_size(p.text) for p in kept if not p.is_heading)
        unit = "characters" if _language(article) == "zh" else "words"
        if not any(not p.is_heading for p in kept):
            raise EditError("the model's answer held nothing your materials support; the paragraph is unchanged. "
                            "Try again, or edit it by hand")
        if op == "shorten" and after >= before:
            raise EditError(f"the model's shorter version was not shorter ({after} {unit} against {before}); "
                            "nothing changed. Try again, or shorten it by hand")
        if op == "expand" and after <= before:
            raise EditError(f"the model's longer version added nothing your materials support ({after} {unit} "
                            f"against {before}); nothing changed. Add notes, or expand it by hand")
        if op == "rewrite" and " ".join(p.text for p in kept).split() == old.split():
            raise EditError("the model gave the paragraph back unchanged; nothing changed. Try again")
        yield Event("done", {"article": _splice(article, index, index + 1, kept)})


def _size(text: str) -> int:
    return len(text.split()) if text.isascii() or " " in text.strip() else len("".join(text.split()))


def _held(text: str, old: str, article: Article) -> str:
    """`text` without its meta sentences and, where the article was written from materials,
    without the new sentences they do not support (a sentence the old paragraph had stays)."""
    from composer.check import sentences
    from composer.check.meta import meta_span

    grounding = grounding_of(article)
    had = {" ".join(old[a:b].split()) for a, b in sentences(old)}
    # The check as the writer sees it (not the strict one composing uses): a close paraphrase of
    # the notes in the model's own words is what Rewrite is for.
    verdicts = {a.start: a for a in grounding.attribute(text)} if grounding.has_materials else {}
    keep = []
    for a, b in sentences(text):
        sentence = text[a:b]
        if meta_span(sentence):
            continue
        verdict = verdicts.get(a)
        if verdict is not None and verdict.status == "unsupported" and " ".join(sentence.split()) not in had:
            continue
        keep.append(sentence)
    return " ".join(keep).strip()


def ground(article: Article, index: int, model: ChatModel, claims: Sequence[str], materials: str,
           seed: int | None = None) -> Iterator[Event]:
    """Rewrite paragraph `index` keeping to the materials; the prompt quotes the claims a checker
    flagged as unsupported (composer.check) and the materials. Streams like rewrite."""
    old = _paragraph_at(article, index)
    if old.is_heading:
        raise EditError("headings are edited by hand, not rewritten by the model")
    flagged = [c.strip() for c in claims if c and c.strip()]
    prompt = prompts_for(model.dialect).ground(old.text, flagged, materials.strip(), _language(article))
    words = len(old.text.split()) or len(old.text) // 2
    yield from _replace_paragraph(article, index, model, prompt, edit_sampling(words, seed))


def keep_to_materials(article: Article, index: int, model: ChatModel, seed: int | None = None) -> Iterator[Event]:
    """The editor's one click: `ground` with the claims the check flagged in this paragraph and
    the materials of the request the article was written from."""
    check = check_article(article)
    claims = [f.claim for f in check.flags if f.block == index]
    if not claims:
        raise EditError("every claim in this paragraph is in your materials; nothing to rewrite")
    materials = str((article.metadata.get("request") or {}).get("materials") or "")
    sources = Sources.of_request(article.metadata.get("request"))
    grounding = grounding_of(article)
    for event in ground(article, index, model, claims, materials, seed=seed):
        if event.kind != "done":
            yield event
            continue
        # A small model, shown the claims, tends to write them again: what it wrote keeps only
        # the sentences the materials support; if none, the old paragraph does, less its flagged
        # sentences. The writer sees the result and Undo brings the old one back.
        new = event.data["article"]
        count = len(new.blocks) - len(article.blocks) + 1
        kept = [replace(p, text=keep_supported(p.text, sources, grounding)) if not p.is_heading else p
                for p in new.blocks[index:index + count] if isinstance(p, Paragraph)]
        kept = [p for p in kept if p.text]
        if not any(not p.is_heading for p in kept):
            old = keep_supported(_paragraph_at(article, index).text, sources, grounding)
            if not old:
                raise EditError("nothing in this paragraph is in your materials: edit it by hand or delete it")
            yield Event("fallback", {"step": "ground", "reason": "the rewrite still made unsupported claims; "
                                                                "kept the sentences your materials support"})
            kept = [Paragraph(old)]
        yield Event("done", {"article": _splice(article, index, index + 1, kept)})


def _replace_paragraph(article: Article, index: int, model: ChatModel, prompt: Prompt,
                       sampling: Sampling, one: bool = False) -> Iterator[Event]:
    new: list[Paragraph] = []
    for item in _stream_paragraphs(model, prompt, sampling):
        if isinstance(item, Event):
            yield item
        else:
            new = item
    if not any(not p.is_heading for p in new):
        raise EditError("the model returned no usable text; the paragraph is unchanged")
    if one:
        new = [next(p for p in new if not p.is_heading)]
    yield Event("done", {"article": _splice(article, index, index + 1, new)})


def rewrite(article: Article, index: int, model: ChatModel, **kw) -> Iterator[Event]:
    return edit_paragraph(article, index, "rewrite", model, **kw)


def expand(article: Article, index: int, model: ChatModel, **kw) -> Iterator[Event]:
    return edit_paragraph(article, index, "expand", model, **kw)


def shorten(article: Article, index: int, model: ChatModel, **kw) -> Iterator[Event]:
    return edit_paragraph(article, index, "shorten", model, **kw)


def insert_paragraph(article: Article, index: int, where: Literal["before", "after"], outline: str,
                     model: ChatModel, *, seed: int | None = None) -> Iterator[Event]:
    """A new paragraph before or after block `index`, written from `outline` and the text on
    either side of it."""
    if not outline or not outline.strip():
        raise EditError("say what the new paragraph is about (its outline is empty)")
    if not article.blocks:
        at = 0
    elif not 0 <= index < len(article.blocks):
        raise EditError(f"no block {index} to insert {where}")
    else:
        at = index if where == "before" else index + 1
        # A picture belongs to the paragraph above it: insert after the picture, not between.
        while where == "after" and at < len(article.blocks) and isinstance(article.blocks[at], Figure):
            at += 1
    before = next((b.text for b in reversed(article.blocks[:at]) if isinstance(b, Paragraph)), "")
    after = next((b.text for b in article.blocks[at:] if isinstance(b, Paragraph)), "")
    prompt = prompts_for(model.dialect).insert(before, after, outline.strip(), _language(article))
    new: list[Paragraph] = []
    for item in _stream_paragraphs(model, prompt, edit_sampling(120, seed)):
        if isinstance(item, Event):
            yield item
        else:
            new = item
    if not new:
        raise EditError("the model returned no usable text; nothing was inserted")
    yield Event("done", {"article": _splice(article, at, at, new)})


def delete_block(article: Article, index: int) -> Article:
    """Delete a paragraph or heading; a picture under it stays, under the paragraph above."""
    _paragraph_at(article, index)
    return _splice(article, index, index + 1, [])


def update_text(article: Article, index: int, text: str) -> Article:
    """The writer's own edit of a paragraph's text (empty text deletes it)."""
    old = _paragraph_at(article, index)
    if not text.strip():
        return delete_block(article, index)
    return _splice(article, index, index + 1, [replace(old, text=text.strip())])


# --- picture edits ---------------------------------------------------------------------------
def remove_figure(article: Article, index: int) -> Article:
    _figure_at(article, index)
    return _splice(article, index, index + 1, [])


def swap_figure(article: Article, index: int, candidate: int) -> Article:
    """Show another of the figure's candidates instead; never one already in the article."""
    fig = _figure_at(article, index)
    if not 0 <= candidate < len(fig.candidates):
        raise EditError(f"the picture has {len(fig.candidates)} candidates, not {candidate + 1}")
    ref = fig.candidates[candidate].image
    if ref.sha256 in _used_hashes(article, skip=index):
        raise EditError("that picture is already used elsewhere in the article")
    # A candidate is a library picture: a generated one's provenance does not pass to it.
    source = "library" if fig.source == "generated" else fig.source
    return _splice(article, index, index + 1, [replace(fig, image=ref, source=source, generated=None)])


def search_figure(article: Article, index: int, caption: str, library: CandidateSource,
                  k: int = LIBRARY_TOP_K) -> Article:
    """Search the library with the words given; the best match not used elsewhere fills the slot
    and the matches become its candidates. The caption the writer wrote stays (the words become
    the figure's query); an empty caption takes the words."""
    fig = _figure_at(article, index)
    words = caption.strip()
    if not words:
        raise EditError("the search caption is empty")
    found = library.candidates(words, k, exclude_hashes=_used_hashes(article, skip=index))
    if not found:
        raise EditError(f"nothing in the library matches {words!r}")
    kept = fig.caption.strip()
    new = replace(fig, image=found[0].image, caption=kept or words, alt=fig.alt if kept else words,
                  source="library", candidates=tuple(found), query=words if kept and words != kept else "",
                  generated=None)
    return _splice(article, index, index + 1, [new])


def use_picture(article: Article, index: int, image: ImageRef, source: Literal["upload", "library"]) -> Article:
    """Show `image` (one of the writer's photos, or a library picture) in figure `index`; its
    caption and candidates stay. Never a picture already used elsewhere in the article."""
    fig = _figure_at(article, index)
    if image.sha256 in _used_hashes(article, skip=index):
        raise EditError("that picture is already used elsewhere in the article")
    return _splice(article, index, index + 1, [replace(fig, image=image, source=source, generated=None)])


def use_generated(article: Article, index: int, image: ImageRef, generated: Generated) -> Article:
    """Show a generated picture in figure `index`, with its provenance; caption and candidates stay."""
    fig = _figure_at(article, index)
    return _splice(article, index, index + 1, [replace(fig, image=image, source="generated", generated=generated)])


def set_caption(article: Article, index: int, caption: str) -> Article:
    fig = _figure_at(article, index)
    return _splice(article, index, index + 1, [replace(fig, caption=caption.strip(), alt=caption.strip())])


def add_figure(article: Article, after: int, model: ChatModel, *, library: CandidateSource | None = None,
               uploads: Sequence[LoadedImage] = (), encoder: ImageTextEncoder | None = None, caption: str | None = None,
               seed: int | None = None, blank: bool = False) -> Iterator[Event]:
    """A new picture after paragraph `after`: captioned by the model (unless a caption is given),
    filled from the writer's unused uploads or from the library. `blank` (an image engine is
    there to Generate one): with nothing to fill it, the slot is added empty rather than refused."""
    para = _paragraph_at(article, after)
    if para.is_heading:
        raise EditError("pictures go after paragraphs, not headings")
    if after + 1 < len(article.blocks) and isinstance(article.blocks[after + 1], Figure):
        raise EditError("this paragraph already has a picture")
    if library is None and not uploads and not blank:
        raise EditError("no pictures to choose from: upload some or open a library")
    prompts = prompts_for(model.dialect)
    paragraphs = article.paragraphs
    slot = sum(1 for b in article.blocks[: after + 1] if isinstance(b, Paragraph)) - 1
    used = set(_used_hashes(article))
    free = [u for u in uploads if u.ref.sha256 not in used]
    # The same rules as composing, for one slot: a photo matched by paragraph first where that
    # is the rule, a caption written from its description, then the same upload matching.
    photos = None
    described: dict[int, str] = {}
    if free and encoder is not None and photos_first(model, prompts, encoder):
        photos = match_photos(paragraphs, (slot,), free, encoder)
        if slot in photos:
            described[slot] = encoder.describe([free[photos[slot]].image])[0]
    if caption is None or not caption.strip():
        written = next(write_captions(model, prompts, paragraphs, (slot,), _language(article), described,
                                      caption_sampling(prompts, seed)))
        if written.fallback:
            yield Event("fallback", {"step": "caption", "reason": written.fallback})
        caption = written.caption
    caption = caption.strip()
    yield Event("caption", {"slot": after, "caption": caption})
    fig: Figure | None = None
    if free:
        chosen = from_uploads(Slots(paragraphs, (slot,), (caption,)), free, model=model, prompts=prompts,
                              encoder=encoder, photos=photos)
        fig = chosen.get(slot)
    elif library is not None:
        found = library.candidates(caption, LIBRARY_TOP_K, exclude_hashes=sorted(used))
        if found:
            fig = Figure(image=found[0].image, caption=caption, alt=caption, source="library",
                         candidates=tuple(found))
    if fig is None and blank:
        fig = Figure(image=None, caption=caption, alt=caption, source="none")
    if fig is None:
        raise EditError("no unused picture left to add")
    yield Event("figure", {"slot": after, "figure": fig})
    yield Event("done", {"article": _splice(article, after + 1, after + 1, [fig])})


def changed_run(old: Sequence[Block], new: Sequence[Block]) -> tuple[int, int]:
    """How many blocks at the start and at the end two versions share: what lies between is
    the one run an edit replaced (or inserted)."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    return start, end


def rebase(base: Article, edited: Article, current: Article) -> Article | None:
    """The change from `base` to `edited` (one run of blocks replaced, or blocks inserted) made
    to `current`, an article other edits have changed since `base`: the replaced blocks are
    found by content wherever they now are, an insert goes beside the block it followed (or
    preceded). None when the blocks it replaces are gone or changed."""
    old, new, now = base.blocks, edited.blocks, current.blocks
    start, end = changed_run(old, new)
    removed, added = old[start:len(old) - end], new[start:len(new) - end]
    if removed:
        n = len(removed)
        places = [i for i in range(len(now) - n + 1) if now[i:i + n] == removed]
        if not places:
            return None
        at = min(places, key=lambda i: abs(i - start))
        return _splice(current, at, at + n, added)
    if start > 0 and old[start - 1] in now:
        at = min((i for i, b in enumerate(now) if b == old[start - 1]), key=lambda i: abs(i - start)) + 1
    elif start < len(old) and old[start] in now:
        at = min((i for i, b in enumerate(now) if b == old[start]), key=lambda i: abs(i - start))
    elif not old:
        at = 0
    else:
        return None
    return _splice(current, at, at, added)


def run_edit(events: Iterator[Event]) -> Article:
    """Drain an edit's events and return the new article (for callers that do not stream)."""
    result = None
    for event in events:
        if event.kind == "done":
            result = event.data["article"]
    assert result is not None, "an edit ended without a done event"
    return result
