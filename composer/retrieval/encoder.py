"""One small interface for image-text encoders (the spec strings that name them: registry.py).

An encoder's `name` is what a library stores to know whether its vectors are still valid
(model + weights); its `spec` is what a user typed to build it.
Encoding is split into `preprocess` (PIL -> tensor, thread-safe, run in the decode threads) and
`encode_pixels` (the forward pass) so a library can overlap decoding with encoding.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

ENCODE_BATCH = 8  # pictures per forward pass when a caller hands over many

@runtime_checkable
class ImageTextEncoder(Protocol):
    """What the library and the planner read from an encoder. Encoders inherit EncoderBase for
    the defaults."""

    name: str  # stable identity of model + weights; a library re-embeds when it changes
    spec: str  # how to build this encoder again (load_encoder(spec))
    dim: int
    decode_size: int  # shortest side preprocess needs; JPEG decoding drafts down to it
    @property
    def languages(self) -> tuple[str, ...]:
        """Caption languages its text tower reads ("en", "zh"); the planner writes queries in one of them."""

    @property
    def min_match(self) -> float | None:
        """Below this caption-image score a library picture is unrelated and not placed (None: no floor)."""

    def preprocess(self, image: Image.Image) -> torch.Tensor: ...

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray: ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def describe(self, images: Sequence[Image.Image]) -> list[str]: ...


class EncoderBase:
    """The declared capabilities with their defaults; an encoder overrides what differs."""

    languages: tuple[str, ...] = ("en",)
    min_match: float | None = None

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        """Words for what each image shows ("a ladybug; a daisy"), for a model that cannot see
        it. "" where the encoder cannot say."""
        return ["" for _ in images]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def batches(items: Sequence, size: int = ENCODE_BATCH) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def encode_images_via_pixels(encoder: ImageTextEncoder, images: Sequence[Image.Image]) -> np.ndarray:
    """A fixed batch at a time: a network's activations grow with the batch, and a request may
    hold many pictures."""
    if not images:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.concatenate([encoder.encode_pixels(torch.stack([encoder.preprocess(im.convert("RGB")) for im in chunk]))
                           for chunk in batches(images)])
