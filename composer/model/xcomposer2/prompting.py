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
from typing import Union

from PIL import Image

from composer.model.base import Prompt
from composer.model.xcomposer2.tokenizer import END_OF_TURN, START_OF_TURN, XComposer2Tokenizer

Piece = Union[str, Image.Image]


def render(prompt: Prompt) -> list[Piece]:
    """The template as alternating text and images (adjacent text merged)."""
    pieces: list[Piece] = []

    def text(s: str) -> None:
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += s
        else:
            pieces.append(s)

    for turn in prompt.turns:
        text(f"{START_OF_TURN}{turn.role}\n")
        for part in turn.parts:
            if isinstance(part, str):
                text(part)
            else:
                pieces.append(part)
        text(f"{END_OF_TURN}\n")
    text(f"{START_OF_TURN}assistant\n{prompt.answer_prefix}")
    return pieces


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
    pieces = render(prompt)
    pieces[-1] = pieces[-1] + extra  # the template always ends with text
    runs: list[list[int]] = [[]]
    images: list[Image.Image] = []
    need_bos = True
    for piece in pieces:
        if isinstance(piece, str):
            runs[-1].extend(tokenizer.encode(piece, bos=need_bos))
            need_bos = False
        else:
            images.append(piece)
            runs.append([])
    return TokenizedPrompt(runs, images)
