"""A Prompt -> the official chat template, as token runs with image slots between them.

    [UNUSED_TOKEN_146]system\n{system}[UNUSED_TOKEN_145]\n          (optional)
    [UNUSED_TOKEN_146]user\n{parts}[UNUSED_TOKEN_145]\n
    [UNUSED_TOKEN_146]assistant\n{answer prefix}

As in the reference's interleav_wrap, the rendered text is cut at each image, every text part is
tokenized on its own, and BOS goes before the first part only. Images keep their place among the
text parts of a turn.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from PIL import Image

from composer.model.base import Prompt
from composer.model.xcomposer2.tokenizer import END_OF_TURN, START_OF_TURN, XComposer2Tokenizer

Piece: TypeAlias = str | Image.Image


Segments = list[tuple[str, bool]]  # (text, is_template): see XComposer2Tokenizer.encode_segments


def render_marked(prompt: Prompt) -> list[Segments | Image.Image]:
    """The template as alternating text and images; each text piece keeps track of which of its
    segments are the template's own (markers, roles) and which are content."""
    pieces: list[Segments | Image.Image] = []

    def text(s: str, template: bool) -> None:
        if not s:
            return
        if pieces and isinstance(pieces[-1], list):
            pieces[-1].append((s, template))
        else:
            pieces.append([(s, template)])

    for turn in prompt.turns:
        text(f"{START_OF_TURN}{turn.role}\n", True)
        for part in turn.parts:
            if isinstance(part, str):
                text(part, False)
            else:
                pieces.append(part)
        text(f"{END_OF_TURN}\n", True)
    text(f"{START_OF_TURN}assistant\n", True)
    text(prompt.answer_prefix, False)
    if not pieces or not isinstance(pieces[-1], list):
        pieces.append([])
    return pieces


def render(prompt: Prompt) -> list[Piece]:
    """The template as alternating text and images (adjacent text merged)."""
    return ["".join(t for t, _ in p) if isinstance(p, list) else p for p in render_marked(prompt)]


@dataclass
class TokenizedPrompt:
    """Token runs and images in order: `runs[0], images[0], runs[1], images[1], ..., runs[-1]`
    (len(runs) == len(images) + 1; a run may be empty)."""

    runs: list[list[int]]
    images: list[Image.Image]

    @property
    def text_ids(self) -> list[int]:
        return [i for run in self.runs for i in run]

    def length(self, tokens_per_image: int) -> int:
        return sum(len(r) for r in self.runs) + tokens_per_image * len(self.images)


def tokenize(prompt: Prompt, tokenizer: XComposer2Tokenizer, extra: str = "") -> TokenizedPrompt:
    """Tokenize the rendered prompt; `extra` is appended to the final text (an option in `choose`)."""
    pieces = render_marked(prompt)
    last = pieces[-1]
    assert not isinstance(last, Image.Image), "the template always ends with text"
    pieces[-1] = last + [(extra, False)]
    runs: list[list[int]] = [[]]
    images: list[Image.Image] = []
    need_bos = True
    for piece in pieces:
        if isinstance(piece, list):
            runs[-1].extend(tokenizer.encode_segments(piece, bos=need_bos))
            need_bos = False
        else:
            images.append(piece)
            runs.append([])
    return TokenizedPrompt(runs, images)
