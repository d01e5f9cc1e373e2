"""The one thing the app asks of an image engine: pictures for a prompt.

Text-to-image is always an existing engine's job (stable-diffusion.cpp's sd-server, vLLM-Omni,
LocalAI, AUTOMATIC1111 and its kin); this package is their client, as composer.model.remote is
the chat servers' client.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from composer.model.base import ModelError

MAX_SIDE = 2048  # larger is not an article's illustration but minutes of GPU time
MIN_SIDE = 64
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")


class ImageGenError(ModelError):
    """The engine gave no picture; the message says which server and why, in one line."""


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    @classmethod
    def parse(cls, text: str) -> Size:
        """'768x512' → Size(768, 512); ValueError with the reason for anything else. Sides are
        multiples of 8 because the latent-diffusion engines work in 8-pixel cells."""
        m = _SIZE.match(text)
        if not m:
            raise ValueError(f"size must be WIDTHxHEIGHT (like 768x512), not {text!r}")
        w, h = int(m.group(1)), int(m.group(2))
        for side in (w, h):
            if not MIN_SIDE <= side <= MAX_SIDE or side % 8:
                raise ValueError(f"size {text!r}: each side must be a multiple of 8 from {MIN_SIDE} to {MAX_SIDE}")
        return cls(w, h)


class ImageGenerator(Protocol):
    """An engine behind one call. `engine` names its API ("openai-images", "a1111"), `model` the
    model it runs ("" when it names none), `size` the pictures' default size and `workers` how
    many requests it serves at once (its servers: the app's queue for generation jobs)."""

    engine: str
    size: Size
    workers: int

    @property
    def model(self) -> str:
        """The model the engine runs, as it or the spec names it ("" when neither does)."""
        ...

    @property
    def name(self) -> str:
        """The engine, model and servers, for a status line and article.json."""
        ...

    def generate(self, prompt: str, size: Size, seed: int, n: int = 1, negative_prompt: str = "") -> list[bytes]:
        """`n` encoded pictures (PNG or JPEG bytes, checked to decode) for `prompt`, the same
        for the same seed on an engine that honours seeds. Raises ImageGenError."""
        ...
