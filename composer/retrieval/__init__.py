"""Image retrieval: image-text encoders behind one interface, and the image library (SQLite
metadata and vectors, FAISS index) that the planner asks for candidates."""
from composer.retrieval.encoder import EncoderBase, ImageTextEncoder
from composer.retrieval.errors import LibraryError
from composer.retrieval.library import ImageLibrary, SyncProgress, SyncReport
from composer.retrieval.registry import DEFAULT_OPEN_CLIP, MULTILINGUAL_OPEN_CLIP, load_encoder

__all__ = [
    "DEFAULT_OPEN_CLIP",
    "EncoderBase",
    "MULTILINGUAL_OPEN_CLIP",
    "ImageLibrary",
    "ImageTextEncoder",
    "LibraryError",
    "SyncProgress",
    "SyncReport",
    "load_encoder",
]
