"""Captions built from what is known to be true of the picture, for small models.

A 135M model asked for a caption writes text about the article ("The article is here for you to
read and enjoy"), echoes its instruction ("One complete phrase that says what the photo shows")
or stops mid-phrase. What is known instead: the encoder's description of the photo ("a tabby
cat; a window seat"), the words of its file name ("marigold-border.jpg"), and the paragraph it
illustrates, which the check has already held to the materials. A caption is made from the first
of these that says something, as one complete phrase.
"""
from __future__ import annotations

import re
from pathlib import Path

from composer.planner.caption import caption_from_paragraph, shorten

# File-name words that say how a photo was taken or stored, not what it shows.
_CAMERA_WORDS = {"img", "image", "dsc", "dscn", "dscf", "pxl", "photo", "pic", "picture", "screenshot", "whatsapp",
                 "scan", "copy", "edited", "final", "export", "jpeg", "jpg", "png", "heic", "webp", "mvimg", "gopr",
                 "file", "untitled", "new", "version", "v"}
_HASH = re.compile(r"^[0-9a-f]{8,}$", re.IGNORECASE)


def from_description(description: str) -> str | None:
    """'an Egyptian cat; a tiger cat' → 'An Egyptian cat': the encoder's description lists its best
    guesses, most likely first, and a caption says one thing."""
    parts = [p.strip() for p in re.split(r"[;\n]", description or "") if p.strip()]
    text = shorten(parts[0]) if parts else None
    return text[0].upper() + text[1:] if text else None


def from_file_name(path: str) -> str | None:
    """'marigold-border.jpg' → 'Marigold border'; None for 'IMG_2041.jpg' or a content hash."""
    words = [w for w in re.split(r"[\s_\-.+()\[\]]+", Path(path).stem) if w]
    # Counters and hashes ("DSC01234", "20240101", "b72a08d4…") are not words: mostly digits, or hex.
    words = [w for w in words if not _HASH.match(w) and w.lower() not in _CAMERA_WORDS
             and sum(c.isalpha() for c in w) > sum(c.isdigit() for c in w)]
    if not words:
        return None
    # camelCase names are words too: "marigoldBorder" → "marigold Border"
    text = " ".join(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", w) for w in words).lower()
    text = shorten(text) or ""
    return text[0].upper() + text[1:] if text else None


def true_caption(paragraph: str, description: str = "", name: str = "") -> str:
    """The photo's description, else its file name's words, else the paragraph's first clause."""
    return from_description(description) or from_file_name(name) or caption_from_paragraph(paragraph)
