"""Prompts for every planner step and edit, one class per dialect, all in this one file.

`generic`: English instructions for chat models (the embedded model, remote servers). Every
prompt about an existing article starts with the same system turn and the same numbered
article, so a backend with a KV cache runs that prefix once per article.

`xcomposer`: the prompts InternLM-XComposer2 was trained on (REFERENCE.md, steps 1-6):
Chinese instructions, `<Seg i>` tags (0-based, every block tagged), answer prefixes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from PIL import Image

from composer.article import Paragraph
from composer.model.base import Part, Prompt, Sampling
from composer.planner.request import ComposeRequest

Language = Literal["en", "zh"]
EditOp = Literal["rewrite", "expand", "shorten"]
LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese"}
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class PlacePrompt:
    prompt: Prompt
    numbering: Literal["seg0", "one"]
    index_map: tuple[int, ...] | None  # prompt number -> paragraph index (None: identity)


@dataclass(frozen=True)
class ChoicePrompt:
    prompt: Prompt
    options: tuple[str, ...]  # scored with model.choose; option i stands for image i


def write_sampling(request: ComposeRequest, seed: int | None) -> Sampling:
    # About 1.4 tokens per English word; Chinese runs about 1.5 tokens per character.
    per_word = 1.5 if request.language == "en" else 2.2
    budget = int(request.length * per_word) + 64
    return Sampling(temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.15,
                    max_new_tokens=min(budget, 3000), seed=seed)


def section_sampling(request: ComposeRequest, sections: int, seed: int | None) -> Sampling:
    per_word = 1.5 if request.language == "en" else 2.2
    budget = int(request.length / max(sections, 1) * per_word) + 32
    return Sampling(temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.15,
                    max_new_tokens=min(budget, 1500), seed=seed)


def edit_sampling(words: int, seed: int | None) -> Sampling:
    return Sampling(temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.15,
                    max_new_tokens=min(int(words * 2.2) + 48, 1500), seed=seed)


def short_sampling(seed: int | None, max_new_tokens: int = 48, stop: tuple[str, ...] = ("\n",)) -> Sampling:
    return Sampling(temperature=0.3, top_p=0.9, top_k=20, repetition_penalty=1.1,
                    max_new_tokens=max_new_tokens, seed=seed, stop=stop)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _options(n: int) -> tuple[str, ...]:
    if n > len(OPTION_LETTERS):
        raise ValueError(f"at most {len(OPTION_LETTERS)} options, got {n}")
    return tuple(OPTION_LETTERS[:n])


class Prompts(Protocol):
    """What the planner asks of a dialect: one prompt per step and edit. Both dialects implement it."""

    name: ClassVar[str]
    caption_quote: ClassVar[str | None]  # the answer prefix opens a quote that this closes
    chained_captions: ClassVar[bool]  # each caption prompt lists the captions before it
    # Uploads are matched to paragraphs before captioning, and each caption is written from its
    # photo's description (False: the official order, caption first, then choose a picture).
    captions_from_photos: ClassVar[bool]

    def write(self, request: ComposeRequest, images: Sequence[Image.Image] = (),
              photos: Sequence[str] = ()) -> Prompt:
        """`images` are shown to a model that sees them; `photos` describe the writer's photos in
        words to one that does not."""

    def write_sections(self, request: ComposeRequest, photos: Sequence[str] = ()) -> list[Prompt] | None: ...

    def write_from_notes(self, request: ComposeRequest, point: str, notes: Sequence[str], words: int,
                         photos: Sequence[str] = ()) -> Prompt:
        """One part of the article from the passages chosen for it (and the writer's photos in
        words), and nothing else."""

    def place(self, paragraphs: Sequence[Paragraph], count: int | Literal["auto"]) -> PlacePrompt: ...

    def caption(self, paragraphs: Sequence[Paragraph], slot: int, past: Sequence[tuple[int, str]] = (),
                language: Language = "en", photo: str = "", words: int = 12) -> Prompt: ...

    def choose(self, paragraphs: Sequence[Paragraph], slot: int, caption: str, images: Sequence[Image.Image],
               names: Sequence[str], sees_images: bool, chosen: Mapping[int, Image.Image] = {}) -> ChoicePrompt: ...

    def edit(self, op: EditOp, paragraph: str, materials: str = "", instruction: str = "",
             language: Language = "en") -> Prompt: ...

    def insert(self, before: str, after: str, outline: str, language: Language = "en") -> Prompt: ...

    def ground(self, paragraph: str, claims: Sequence[str], materials: str, language: Language = "en") -> Prompt:
        """Rewrite a paragraph keeping to the materials; `claims` are the ones a checker flagged."""


class GenericPrompts:
    name: ClassVar[str] = "generic"
    caption_quote: ClassVar[str | None] = None
    chained_captions: ClassVar[bool] = False
    captions_from_photos: ClassVar[bool] = True
    SYSTEM = "You are a careful writer and photo editor for a magazine."

    # --- composition -----------------------------------------------------------------------
    def write(self, request: ComposeRequest, images: Sequence[Image.Image] = (),
              photos: Sequence[str] = ()) -> Prompt:
        lines = [f'Write an article titled "{request.title}".']
        if request.outline:
            lines.append("Follow this outline, one or two paragraphs per point:")
            lines += [f"- {item}" for item in request.outline]
            if request.use_headings:
                lines.append("Put each outline point, in exactly these words, as a heading (## point) over its part.")
        if request.materials:
            lines.append(f"Use these facts and notes:\n{request.materials}")
        if photos:
            lines.append(_photo_list(photos))
        if request.style:
            lines.append(f"Style: {request.style}.")
        lines.append(f"Length: about {request.length} words. Write in {LANGUAGE_NAMES[request.language]}.")
        lines.append("Write plain paragraphs separated by blank lines. Do not repeat the title.")
        return Prompt.user(*images, "\n".join(lines), system=self.SYSTEM)

    def write_sections(self, request: ComposeRequest, photos: Sequence[str] = ()) -> list[Prompt] | None:
        """One prompt per outline point, for small models: asked for a whole article they drift
        off the outline or stop after one paragraph; asked for one part at a time they stay on
        it. The prompts share their start (title, notes, whole outline), which the cache serves."""
        if len(request.outline) < 2:
            return None
        head = [f'You are writing the article "{request.title}".']
        if request.materials:
            head.append(f"Notes:\n{request.materials}")
        if photos:
            head.append(_photo_list(photos))
        head.append("Outline of the whole article:\n" + "\n".join(f"- {o}" for o in request.outline))
        words = max(40, request.length // len(request.outline))
        tail = (f"Style: {request.style}. " if request.style else "") + (
            f"About {words} words, in {LANGUAGE_NAMES[request.language]}. Use only facts from the notes. "
            "Write plain paragraphs, no title, no heading.")
        return [Prompt.user("\n\n".join(head) + f"\n\nNow write only the part about: {point}\n{tail}",
                            system=self.SYSTEM) for point in request.outline]

    def write_from_notes(self, request: ComposeRequest, point: str, notes: Sequence[str], words: int,
                         photos: Sequence[str] = ()) -> Prompt:
        # The notes alone, not the whole materials: what the model cannot see it cannot mix up.
        lines = [f'You are writing one part of the article "{request.title}". This part is about: {point}.',
                 "Notes for this part:", *(f"- {n}" for n in notes), *([_photo_list(photos)] if photos else []),
                 f"Write one paragraph of about {max(20, words)} words in {LANGUAGE_NAMES[request.language]} that "
                 "says what these notes say. Use only facts from these notes and add nothing else."
                 + (f" Style: {request.style}." if request.style else ""),
                 "Write only the paragraph: no title, no heading, nothing about the article or the notes."]
        return Prompt.user("\n".join(lines), system=self.SYSTEM)

    def _article(self, paragraphs: Sequence[Paragraph]) -> tuple[str, tuple[int, ...]]:
        """The shared prefix: text paragraphs numbered from 1, headings shown unnumbered."""
        index_map: list[int] = []
        lines = ["Article:"]
        for i, p in enumerate(paragraphs):
            if p.is_heading:
                lines.append(f"## {p.text}")
            else:
                index_map.append(i)
                lines.append(f"{len(index_map)}. {p.text}")
        return "\n".join(lines) + "\n\n", tuple(index_map)

    def _about_article(self, paragraphs: Sequence[Paragraph], task: str, answer_prefix: str = "") -> Prompt:
        article, _ = self._article(paragraphs)
        return Prompt.user(article + task, system=self.SYSTEM, answer_prefix=answer_prefix)

    def place(self, paragraphs: Sequence[Paragraph], count: int | Literal["auto"]) -> PlacePrompt:
        _, index_map = self._article(paragraphs)
        how_many = "a few paragraphs" if count == "auto" else f"exactly {count} paragraph{'s' if count != 1 else ''}"
        task = (f"Choose {how_many} after which a photograph would help the reader. "
                "Answer with the paragraph numbers only, separated by commas.")
        return PlacePrompt(self._about_article(paragraphs, task, "Paragraph numbers:"), "one", index_map)

    def caption(self, paragraphs: Sequence[Paragraph], slot: int, past: Sequence[tuple[int, str]] = (),
                language: Language = "en", photo: str = "", words: int = 12) -> Prompt:
        _, index_map = self._article(paragraphs)
        n = index_map.index(slot) + 1
        # The paragraph is quoted again after the shared article: small models lose track of
        # which numbered paragraph is meant, and the repeat costs only the uncached tail.
        shows = f"The photo shows: {photo}.\n" if photo else ""
        task = (f'Paragraph {n}: "{_clip(paragraphs[slot].text, 400)}"\n{shows}'
                f"Write the caption of a photograph to place after paragraph {n}: one complete phrase "
                f"under {words} words, in {LANGUAGE_NAMES[language]}, saying what the photo shows.")
        return self._about_article(paragraphs, task, "Caption:")

    def choose(self, paragraphs: Sequence[Paragraph], slot: int, caption: str, images: Sequence[Image.Image],
               names: Sequence[str], sees_images: bool, chosen: Mapping[int, Image.Image] = {}) -> ChoicePrompt:
        letters = _options(len(names))
        _, index_map = self._article(paragraphs)
        n = index_map.index(slot) + 1 if slot in index_map else slot + 1
        ask = f'Which picture best fits after paragraph {n}, with the caption "{caption}"?\n'
        if sees_images:
            article, _ = self._article(paragraphs)
            parts: list[Part] = [article + ask]
            for letter, img in zip(letters, images):
                parts += [f"{letter}. ", img, "\n"]
            parts.append("Answer with the letter.")
            prompt = Prompt.user(*parts, system=self.SYSTEM, answer_prefix="The best picture is")
        else:
            listing = "\n".join(f"{letter}. {name}" for letter, name in zip(letters, names))
            prompt = self._about_article(paragraphs, f"{ask}{listing}\nAnswer with the letter.", "The best picture is")
        return ChoicePrompt(prompt, tuple(f" {letter}" for letter in letters))

    # --- editing ---------------------------------------------------------------------------
    def edit(self, op: EditOp, paragraph: str, materials: str = "", instruction: str = "",
             language: Language = "en") -> Prompt:
        what = {"rewrite": "Rewrite this paragraph in better words, keeping its facts",
                "expand": "Expand this paragraph with more detail",
                "shorten": "Shorten this paragraph to about half its length, keeping the key facts"}[op]
        lines = [f'{what}:\n"{paragraph}"']
        if materials:
            lines.append(f"Use these notes:\n{materials}")
        if instruction:
            lines.append(f"Instruction: {instruction}")
        lines.append(f"Write in {LANGUAGE_NAMES[language]}. Answer with the new paragraph only.")
        return Prompt.user("\n".join(lines), system=self.SYSTEM)

    def insert(self, before: str, after: str, outline: str, language: Language = "en") -> Prompt:
        text = (f'Write one new paragraph to go between these two.\nFirst: "{before}"\nSecond: "{after}"\n'
                f"The new paragraph is about: {outline}\n"
                f"Write in {LANGUAGE_NAMES[language]}. Answer with the new paragraph only.")
        return Prompt.user(text, system=self.SYSTEM)

    def ground(self, paragraph: str, claims: Sequence[str], materials: str, language: Language = "en") -> Prompt:
        lines = [f'Rewrite this paragraph so that it says only what the materials support:\n"{paragraph}"']
        if claims:
            lines.append("These claims are not supported by the materials; correct them or leave them out:")
            lines += [f'- "{c}"' for c in claims]
        lines.append(f"Materials:\n{materials}" if materials else "Materials: (none given)")
        lines.append(f"Write in {LANGUAGE_NAMES[language]}. Answer with the new paragraph only.")
        return Prompt.user("\n".join(lines), system=self.SYSTEM)


class XComposerPrompts:
    """The official composition protocol. The instructions stay in Chinese as trained; an
    English article is asked for by one added sentence (请用英文写作) rather than by rewording."""

    name: ClassVar[str] = "xcomposer"
    caption_quote: ClassVar[str | None] = '"'
    chained_captions: ClassVar[bool] = True
    captions_from_photos: ClassVar[bool] = False
    ENGLISH = "请用英文写作。"

    def write_sections(self, request: ComposeRequest, photos: Sequence[str] = ()) -> list[Prompt] | None:
        return None  # XComposer2 writes the whole article in one go, as it was trained

    def write_from_notes(self, request: ComposeRequest, point: str, notes: Sequence[str], words: int,
                         photos: Sequence[str] = ()) -> Prompt:
        text = (f"根据以下素材，为文章“{request.title}”写关于“{point}”的一段话，约{max(20, words)}字。"
                "只使用素材中的事实，不要添加其他内容，不要写标题，不要谈论文章本身。\n素材：\n"
                + "\n".join(f"- {n}" for n in notes))
        if photos:
            text += "\n作者的照片：\n" + "\n".join(f"{i + 1}. {d}" for i, d in enumerate(photos))
        if request.language == "en":
            text += self.ENGLISH
        return Prompt.user(text)

    def write(self, request: ComposeRequest, images: Sequence[Image.Image] = (),
              photos: Sequence[str] = ()) -> Prompt:
        text = f"根据以下标题：“{request.title}”，创作长文章，字数不少于{request.length}字。"
        if request.outline:
            text += "文章大纲：\n" + "\n".join(f"{i + 1}. {o}" for i, o in enumerate(request.outline)) + "\n"
            if request.use_headings:
                text += "请把大纲的每一点原样作为小标题（以## 开头）。"
        if request.materials:
            text += f"请结合以下文本素材：\n“{request.materials}”\n"
        if photos:
            text += ("作者的照片：\n" + "\n".join(f"{i + 1}. {d}" for i, d in enumerate(photos))
                     + "\n请在合适的位置提到每一张照片。\n")
        if request.style:
            text += f"写作风格：{request.style}。"
        if request.language == "en":
            text += self.ENGLISH
        parts: list[Part] = []
        for img in images:
            parts += [img, " "]
        return Prompt.user(*parts, text)

    @staticmethod
    def _tagged(paragraphs: Sequence[Paragraph]) -> str:
        return "".join(f"<Seg{i}> {p.text}\n" for i, p in enumerate(paragraphs))

    def place(self, paragraphs: Sequence[Paragraph], count: int | Literal["auto"]) -> PlacePrompt:
        n = "" if count == "auto" else str(count)
        text = f'给定文章"{self._tagged(paragraphs)}" 根据上述文章，选择适合插入图像的{n}行'
        return PlacePrompt(Prompt.user(text, answer_prefix="适合插入图像的行是"), "seg0", None)

    def caption(self, paragraphs: Sequence[Paragraph], slot: int, past: Sequence[tuple[int, str]] = (),
                language: Language = "en", photo: str = "", words: int = 12) -> Prompt:
        ctx = self._tagged(paragraphs[: slot + 1])
        earlier = "".join(f'现在<Seg{k}>后插入图像对应的标题是"{cap}"，' for k, cap in past)
        title = "英文标题" if language == "en" else "标题"
        text = f'给定文章"{ctx}" {earlier}给出适合在<Seg{slot}>后插入的图像对应的{title}。'
        if words < 12:  # a re-ask after a caption too long to use whole (not in the trained prompt)
            text += f"标题要简短，不超过{words}个词。"
        return Prompt.user(text, answer_prefix='标题是"')

    def choose(self, paragraphs: Sequence[Paragraph], slot: int, caption: str, images: Sequence[Image.Image],
               names: Sequence[str], sees_images: bool, chosen: Mapping[int, Image.Image] = {}) -> ChoicePrompt:
        letters = _options(len(images) if sees_images else len(names))
        parts: list[Part] = ["根据给定上下文和候选图像，选择合适的配图："]
        for i, p in enumerate(paragraphs[: slot + 1]):
            parts.append(p.text + "\n")
            if i in chosen:
                parts += [chosen[i], "\n"]
        parts.append("候选图像包括: ")
        items: Sequence[Part] = images if sees_images else names
        for letter, item in zip(letters, items):
            parts += [f"{letter}.", item, "\n"]
        return ChoicePrompt(Prompt.user(*parts, answer_prefix="最合适的图是"), letters)

    def edit(self, op: EditOp, paragraph: str, materials: str = "", instruction: str = "",
             language: Language = "en") -> Prompt:
        verb = {"rewrite": "改写", "expand": "扩写", "shorten": "缩写"}[op]
        text = f"{verb}以下段落：{paragraph}"
        if materials and op != "shorten":
            text += f"\n基于以下素材：{materials}"
        if instruction:
            text += f"\n要求：{instruction}"
        if language == "en":
            text += "\n" + self.ENGLISH
        return Prompt.user(text)

    def insert(self, before: str, after: str, outline: str, language: Language = "en") -> Prompt:
        text = f"在以下两段中插入一段。\n第一段：{before}\n第二段：{after}\n插入段的大纲：{outline}"
        if language == "en":
            text += "\n" + self.ENGLISH
        return Prompt.user(text)

    def ground(self, paragraph: str, claims: Sequence[str], materials: str, language: Language = "en") -> Prompt:
        text = f"根据素材改写以下段落，只保留素材支持的内容：{paragraph}"
        if claims:
            text += "\n以下说法没有素材支持，请改正或删去：\n" + "\n".join(f"“{c}”" for c in claims)
        text += f"\n素材：{materials}" if materials else "\n素材：（无）"
        if language == "en":
            text += "\n" + self.ENGLISH
        return Prompt.user(text)


DIALECTS: dict[str, type[Prompts]] = {"generic": GenericPrompts, "xcomposer": XComposerPrompts}


def prompts_for(dialect: str) -> Prompts:
    try:
        return DIALECTS[dialect]()
    except KeyError:
        raise ValueError(f"no prompts for dialect {dialect!r}") from None


def _photo_list(photos: Sequence[str]) -> str:
    return ("The writer's photos (mention each one in the part where it fits):\n"
            + "\n".join(f"- Photo {i + 1}: {d}" for i, d in enumerate(photos)))


def caption_sampling(prompts: Prompts, seed: int | None) -> Sampling:
    """A caption is one short line; in the xcomposer dialect it also ends at the closing quote."""
    quote = (prompts.caption_quote,) if prompts.caption_quote else ()
    return short_sampling(seed, max_new_tokens=40, stop=("\n", *quote))
