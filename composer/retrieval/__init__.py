"""Image retrieval: image-text encoders behind one interface, and the image library (SQLite
metadata and vectors, FAISS index) that the planner asks for candidates.

Names are imported on first use (PEP 562): the library and the encoders bring in torch and
faiss, seconds of start-up that `python -m composer check` or `--help` should not pay.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.retrieval.encoder import EncoderBase, ImageTextEncoder
    from composer.retrieval.errors import LibraryError
    from composer.retrieval.library import ImageLibrary, SyncProgress, SyncReport
    from composer.retrieval.registry import DEFAULT_OPEN_CLIP, MULTILINGUAL_OPEN_CLIP, load_encoder

_WHERE = {
    "EncoderBase": "encoder", "ImageTextEncoder": "encoder", "LibraryError": "errors",
    "ImageLibrary": "library", "SyncProgress": "library", "SyncReport": "library",
    "DEFAULT_OPEN_CLIP": "registry", "MULTILINGUAL_OPEN_CLIP": "registry", "load_encoder": "registry",
}

__all__ = [
    "DEFAULT_OPEN_CLIP",
    "MULTILINGUAL_OPEN_CLIP",
    "EncoderBase",
    "ImageLibrary",
    "ImageTextEncoder",
    "LibraryError",
    "SyncProgress",
    "SyncReport",
    "load_encoder",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"composer.retrieval.{_WHERE[name]}"), name)
