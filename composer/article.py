"""The article as plain data: blocks of paragraphs, headings and figures, with a lossless JSON form.

Nothing here imports the rest of composer: every other layer (planner, export, UI) builds on it.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

FORMAT_VERSION = 1
# What an article read from elsewhere may hold: a 5,000-word article is about a hundred blocks
# (four hundred if every paragraph were one short sentence). More is not an article a writer edits
# but a load on the editor (each block is a view: 2,000 took 81 s to show).
MAX_BLOCKS = 500
MAX_TEXT_CHARS = 1_000_000  # title, paragraphs, captions and alt texts together


@dataclass(frozen=True)
class ImageRef:
    """An image known by its content hash; `path` says where its bytes are on disk."""

    sha256: str
    path: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Candidate:
    """An image that could fill a figure slot, with the score that ranked it."""

    image: ImageRef
    score: float = 0.0


@dataclass(frozen=True)
class Paragraph:
    """A block of text. `kind == "heading"` blocks carry a Markdown level (1-6) and never get a picture."""

    text: str
    kind: Literal["paragraph", "heading"] = "paragraph"
    level: int = 0

    @property
    def is_heading(self) -> bool:
        return self.kind == "heading"


@dataclass(frozen=True)
class Generated:
    """Where a generated picture came from (EU AI Act Art. 50: a generated picture says so): the
    engine's API and model, the prompt and negative prompt it was given, the seed and the size.
    Read back from article.json, every field is checked for its type (see _generated_from_dict)."""

    engine: str  # "openai-images" or "a1111"
    model: str  # the model the engine named or was asked for ("" when it said none)
    prompt: str
    seed: int
    width: int
    height: int
    negative_prompt: str = ""

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Figure:
    """A picture slot. `image` is None while the slot is empty (no image could be found).
    `query` is the text the encoder matched when it differs from the caption (an English query
    for an encoder that reads only English, under a Chinese caption): kept, never shown."""

    image: ImageRef | None
    caption: str = ""
    alt: str = ""
    source: Literal["upload", "library", "generated", "none"] = "none"
    candidates: tuple[Candidate, ...] = ()
    query: str = ""
    generated: Generated | None = None  # set while `image` is a generated picture (source "generated")


Block = Paragraph | Figure


def paragraph_label(blocks: Sequence[Block], index: int) -> str:
    """How a writer finds block `index` on screen, the one numbering the editor, the CLI, the
    check and article.json's messages use: body paragraphs from 1 (a heading is named by its
    words, not counted), anything else by the paragraph it follows ("after paragraph 2")."""
    n = sum(1 for b in blocks[: index + 1] if isinstance(b, Paragraph) and not b.is_heading)
    block = blocks[index]
    if isinstance(block, Paragraph):
        if block.is_heading:
            words = " ".join(block.text.split())
            return f'heading "{words if len(words) <= 40 else words[:39] + "…"}"'
        return f"paragraph {n}"
    return f"after paragraph {n}" if n else "before paragraph 1"


@dataclass(frozen=True)
class Article:
    title: str
    blocks: tuple[Block, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    # --- views -----------------------------------------------------------------------------
    @property
    def paragraphs(self) -> list[Paragraph]:
        return [b for b in self.blocks if isinstance(b, Paragraph)]

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]

    def with_blocks(self, blocks: list[Block] | tuple[Block, ...]) -> Article:
        return replace(self, blocks=tuple(blocks))

    # --- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "title": self.title,
            "metadata": self.metadata,
            "blocks": [_block_to_dict(b) for b in self.blocks],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], limited: bool = True) -> Article:
        """`limited`: held to MAX_BLOCKS and MAX_TEXT_CHARS (ValueError past them), as anything
        read from elsewhere is; the app's own saved versions are read without (none is lost)."""
        version = data.get("format", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported article format {version!r} (expected {FORMAT_VERSION})")
        blocks = data.get("blocks", [])
        if limited and isinstance(blocks, (list, tuple)) and len(blocks) > MAX_BLOCKS:
            raise ValueError(f"an article holds at most {MAX_BLOCKS} blocks; this one has {len(blocks)}")
        article = cls(
            title=data["title"],
            blocks=tuple(_block_from_dict(b) for b in blocks),
            metadata=dict(data.get("metadata", {})),
        )
        chars = 0 if not limited else len(str(article.title)) + sum(
            len(str(b.text)) if isinstance(b, Paragraph) else len(str(b.caption)) + len(str(b.alt))
            for b in article.blocks)
        if limited and chars > MAX_TEXT_CHARS:
            raise ValueError(f"an article holds at most {MAX_TEXT_CHARS:,} characters of text; this one has {chars:,}")
        return article

    @classmethod
    def from_json(cls, text: str) -> Article:
        return cls.from_dict(json.loads(text))


def _ref_from_dict(d: dict[str, Any] | None) -> ImageRef | None:
    return None if d is None else ImageRef(**d)


_GENERATED_TEXT = ("engine", "model", "prompt", "negative_prompt")
_GENERATED_NUMBERS = ("seed", "width", "height")


def _generated_from_dict(d: Any) -> Generated | None:
    """Provenance from article.json: untrusted, so each field must have its type (a prompt is
    text, a seed a whole number), else the file is refused rather than half believed."""
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ValueError("a figure's \"generated\" must be an object")
    unknown = set(d) - set(_GENERATED_TEXT) - set(_GENERATED_NUMBERS)
    if unknown:
        raise ValueError(f"a figure's \"generated\" has unknown fields: {', '.join(sorted(map(str, unknown)))}")
    for key in _GENERATED_TEXT:
        if not isinstance(d.get(key, ""), str):
            raise ValueError(f"a figure's generated.{key} must be a text")
    for key in _GENERATED_NUMBERS:
        value = d.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"a figure's generated.{key} must be a whole number")
    return Generated(engine=d.get("engine", ""), model=d.get("model", ""), prompt=d.get("prompt", ""),
                     seed=d["seed"], width=d["width"], height=d["height"],
                     negative_prompt=d.get("negative_prompt", ""))


def _block_to_dict(block: Block) -> dict[str, Any]:
    if isinstance(block, Paragraph):
        return {"type": "paragraph", **asdict(block)}
    if isinstance(block, Figure):
        return {
            "type": "figure",
            "image": None if block.image is None else asdict(block.image),
            "caption": block.caption,
            "alt": block.alt,
            "source": block.source,
            "candidates": [{"image": asdict(c.image), "score": c.score} for c in block.candidates],
            **({"query": block.query} if block.query else {}),
            **({"generated": asdict(block.generated)} if block.generated is not None else {}),
        }
    raise TypeError(f"not a block: {block!r}")


def _block_from_dict(d: dict[str, Any]) -> Block:
    kind = d.get("type")
    if kind == "paragraph":
        return Paragraph(text=d["text"], kind=d.get("kind", "paragraph"), level=d.get("level", 0))
    if kind == "figure":
        generated = _generated_from_dict(d.get("generated"))
        if (d.get("source") == "generated") != (generated is not None):
            raise ValueError('a figure is "generated" exactly when it says how it was generated')
        return Figure(
            image=_ref_from_dict(d.get("image")),
            caption=d.get("caption", ""),
            alt=d.get("alt", ""),
            source=d.get("source", "none"),
            candidates=tuple(
                Candidate(image=ImageRef(**c["image"]), score=float(c.get("score", 0.0)))
                for c in d.get("candidates", [])
            ),
            query=d.get("query", ""),
            generated=generated,
        )
    raise ValueError(f"unknown block type {kind!r}")
