"""A picture for one slot: its prompt (from what the slot is about), its seed (from the
request's seed and the slot), and the file it is kept in until the article adopts it.

Engines read English prompts best and short ones best: a prompt is the slot's caption (or its
English query, for a Chinese article), the article's subject and style in a few words, and a
fixed negative prompt, since a picture with made-up lettering or a watermark is no illustration.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from composer.article import Generated, ImageRef
from composer.imagegen.base import ImageGenerator, Size
from composer.images import decode_image_bytes
from composer.planner.request import printable

NEGATIVE_PROMPT = "text, letters, words, caption, watermark, signature, logo, blurry, low quality, deformed"
MAX_SUBJECT_WORDS = 30
MAX_STYLE_WORDS = 8
MAX_PROMPT_CHARS = 400
SEED_RANGE = 2**31 - 1  # what every engine takes (A1111's -1 means random: never sent)
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def _words(text: str, limit: int) -> str:
    words = " ".join(printable(text).replace("…", " ").split()).split(" ")
    return " ".join(words[:limit]).rstrip(" ,;:.")


def _english(text: str) -> str:
    return "" if _CJK.search(text) else text


def prompt_for(caption: str, title: str, style: str = "", query: str = "", section: str = "") -> str:
    """What the slot is about, for an engine: its caption (or the English query where the caption
    is not English), the subject of its section (a heading's words before any colon), the
    article's title as context, and the first clause of its style."""
    subject = query if (query and _CJK.search(caption)) else caption
    subject = _words(subject, MAX_SUBJECT_WORDS) or _words(title, MAX_SUBJECT_WORDS)
    parts = [subject]
    topic = _words(_english(section).split(":")[0], 8)
    if topic and topic.lower() not in subject.lower():
        parts.append(topic)
    parts.append("editorial illustration")
    if _english(title).strip():
        parts.append(f"for an article about {_words(title, 12)}")
    clause = _words(re.split(r"[;,.]", _english(style))[0], MAX_STYLE_WORDS)
    if clause:
        parts.append(f"{clause} tone")
    parts.append("detailed, natural light")
    return ", ".join(parts)[:MAX_PROMPT_CHARS]


def slot_seed(seed: int | None, slot: int) -> int:
    """The same request (its seed) and slot give the same seed, so the same pictures; slots get
    seeds far apart, so that neighbouring slots do not look alike."""
    return ((seed or 0) * 1_000_003 + (slot + 1) * 7_919) % SEED_RANGE


def next_seed(seed: int) -> int:
    """Regenerate: a new seed, still reproducible from the one before."""
    return (seed * 48_271 + 1) % SEED_RANGE


@dataclass
class Illustrator:
    """An engine and the folder its pictures are written to (a temp or session folder: the
    article's bundle or workspace copies them in when it adopts the article)."""

    generator: ImageGenerator
    folder: Path
    size: Size | None = None  # None: the engine spec's size

    def illustrate(self, prompt: str, seed: int, negative_prompt: str = NEGATIVE_PROMPT) -> tuple[ImageRef, Generated]:
        """One picture for `prompt`: its file and its provenance. Raises ImageGenError."""
        size = self.size or self.generator.size
        data = self.generator.generate(prompt, size, seed, 1, negative_prompt)[0]
        loaded = decode_image_bytes(data, "generated picture")
        self.folder.mkdir(parents=True, exist_ok=True)
        suffix = ".jpg" if loaded.format == "JPEG" else ".png"
        path = self.folder / f"generated-{loaded.ref.sha256[:16]}{suffix}"
        if loaded.format not in ("JPEG", "PNG"):  # kept in a format every export reads
            path = self.folder / f"generated-{loaded.ref.sha256[:16]}.png"
            loaded.image.save(path, format="PNG")
            loaded = decode_image_bytes(path.read_bytes(), path)
        else:
            path.write_bytes(data)
        ref = ImageRef(loaded.ref.sha256, str(path), loaded.ref.width, loaded.ref.height)
        provenance = Generated(engine=self.generator.engine, model=self.generator.model, prompt=prompt, seed=seed,
                               width=loaded.ref.width, height=loaded.ref.height, negative_prompt=negative_prompt)
        return ref, provenance
