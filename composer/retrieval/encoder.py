"""One small interface for image-text encoders, and the spec strings that name them.

A spec is what a user types (`open_clip:ViT-B-32:laion2b_s34b_b79k`, `embedded`); an encoder's
`name` is what a library stores to know whether its vectors are still valid (model + weights).
Encoding is split into `preprocess` (PIL -> tensor, thread-safe, run in the decode threads) and
`encode_pixels` (the forward pass) so a library can overlap decoding with encoding.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from PIL import Image

from composer.retrieval.errors import LibraryError

DEFAULT_OPEN_CLIP = "open_clip:ViT-B-32:laion2b_s34b_b79k"
MULTILINGUAL_OPEN_CLIP = "open_clip:xlm-roberta-base-ViT-B-32:laion5b_s13b_b90k"


@runtime_checkable
class ImageTextEncoder(Protocol):
    name: str  # stable identity of model + weights; a library re-embeds when it changes
    spec: str  # how to build this encoder again (load_encoder(spec))
    dim: int
    decode_size: int  # shortest side preprocess needs; JPEG decoding drafts down to it
    languages: tuple[str, ...]  # caption languages its text tower reads ("en", "zh"); the planner writes captions in one of them

    def preprocess(self, image: Image.Image) -> torch.Tensor: ...

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray: ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def encode_images_via_pixels(encoder: ImageTextEncoder, images: Sequence[Image.Image]) -> np.ndarray:
    if not images:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return encoder.encode_pixels(torch.stack([encoder.preprocess(im.convert("RGB")) for im in images]))


def load_encoder(spec: str) -> ImageTextEncoder:
    """Build an encoder from a spec string: `embedded`, `open_clip:MODEL[:PRETRAINED]` or `auto`
    (ViT-B-32 where its weights are already on this machine, else `embedded`)."""
    spec = spec.strip()
    if spec == "auto":
        spec = resolve_auto()
    if spec == "embedded" or spec.startswith("embedded:"):
        from composer.retrieval.embedded import EmbeddedEncoder

        return EmbeddedEncoder.load()
    if spec.startswith("open_clip:"):
        from composer.retrieval.openclip import OpenClipEncoder

        model, pretrained = parse_open_clip_spec(spec)
        return OpenClipEncoder.load(model, pretrained)
    raise LibraryError(f"unknown encoder {spec!r}: use 'embedded' or 'open_clip:MODEL[:PRETRAINED]'")


def parse_open_clip_spec(spec: str) -> tuple[str, str | None]:
    rest = spec.removeprefix("open_clip:")
    # open_clip's own schemas contain a colon: keep them in the model part.
    for schema in ("hf-hub:", "local-dir:"):
        if rest.startswith(schema):
            return rest, None
    model, _, pretrained = rest.partition(":")
    if not model:
        raise LibraryError(f"encoder spec {spec!r} names no model")
    return model, (pretrained or None)


def resolve_auto() -> str:
    from composer.retrieval.openclip import weights_available

    return DEFAULT_OPEN_CLIP if weights_available(*parse_open_clip_spec(DEFAULT_OPEN_CLIP)) else "embedded"
