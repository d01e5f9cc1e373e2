"""Prompts for every planner step, one class per dialect.

`generic`: English instructions for chat models (the embedded model, remote servers).
The xcomposer dialect (the official Chinese prompts) plugs in beside it with the same methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from PIL import Image

from composer.article import Paragraph
from composer.model.base import Prompt, Sampling, Turn
from composer.planner.request import ComposeRequest

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


def short_sampling(seed: int | None, max_new_tokens: int = 48, stop: tuple[str, ...] = ("\n",)) -> Sampling:
    return Sampling(temperature=0.3, top_p=0.9, top_k=20, repetition_penalty=1.1,
                    max_new_tokens=max_new_tokens, seed=seed, stop=stop)


class GenericPrompts:
    name = "generic"
    caption_quote: str | None = None

    def write(self, request: ComposeRequest, images: Sequence[Image.Image] = ()) -> Prompt:
        lines = [f'Write an article titled "{request.title}".']
        if request.outline:
            lines.append("Follow this outline, one or two paragraphs per point:")
            lines += [f"- {item}" for item in request.outline]
        if request.materials:
            lines.append(f"Use these facts and notes:\n{request.materials}")
        if request.style:
            lines.append(f"Style: {request.style}.")
        lines.append(f"Length: about {request.length} words. Write in {LANGUAGE_NAMES[request.language]}.")
        lines.append("Write plain paragraphs separated by blank lines. Do not repeat the title.")
        parts: list = list(images) + ["\n".join(lines)]
        return Prompt.user(*parts, system="You are a careful writer of clear, factual magazine articles.")

    def place(self, paragraphs: Sequence[Paragraph], count: int | Literal["auto"]) -> PlacePrompt:
        index_map = tuple(i for i, p in enumerate(paragraphs) if not p.is_heading)
        numbered = "\n".join(f"{n + 1}. {_clip(paragraphs[i].text, 200)}" for n, i in enumerate(index_map))
        how_many = "a few paragraphs" if count == "auto" else f"exactly {count} paragraph{'s' if count != 1 else ''}"
        text = (f"Here are the paragraphs of an article:\n{numbered}\n\n"
                f"Choose {how_many} after which a photograph would help the reader. "
                "Answer with the paragraph numbers only, separated by commas.")
        return PlacePrompt(Prompt.user(text, answer_prefix="Paragraph numbers:"), "one", index_map)

    def caption(self, paragraphs: Sequence[Paragraph], slot: int, past: Sequence[tuple[int, str]] = ()) -> Prompt:
        # One worked example: small chat models otherwise answer with a paragraph, not a caption.
        ask = "Describe in one short line (under 12 words) a photograph that would illustrate this paragraph."
        return Prompt([
            Turn("system", ["You write short, concrete photo captions."]),
            Turn("user", [f'Paragraph: "{_CAPTION_EXAMPLE[0]}"\n{ask}']),
            Turn("assistant", [_CAPTION_EXAMPLE[1]]),
            Turn("user", [f'Paragraph: "{_clip(paragraphs[slot].text, 600)}"\n{ask}']),
        ])

    def choose(self, context: Sequence[Paragraph], slot: int, caption: str,
               images: Sequence[Image.Image], names: Sequence[str], sees_images: bool) -> ChoicePrompt:
        letters = OPTION_LETTERS[: len(names)]
        if sees_images:
            parts: list = [f'Which picture best fits this caption: "{caption}"?\n']
            for letter, img in zip(letters, images):
                parts += [f"{letter}. ", img, "\n"]
        else:
            listing = "\n".join(f"{letter}. {name}" for letter, name in zip(letters, names))
            parts = [f'Which picture file best fits this caption: "{caption}"?\n{listing}\n'
                     "Answer with the letter."]
        return ChoicePrompt(Prompt.user(*parts, answer_prefix="The best picture is"),
                            tuple(f" {letter}" for letter in letters))


_CAPTION_EXAMPLE = (
    "The harbour wakes early: fishing boats unload crates of sardines while gulls circle overhead.",
    "Fishing boats unloading sardines in a busy harbour at dawn",
)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


DIALECTS = {"generic": GenericPrompts}


def prompts_for(dialect: str):
    try:
        return DIALECTS[dialect]()
    except KeyError:
        raise ValueError(f"no prompts for dialect {dialect!r}") from None
