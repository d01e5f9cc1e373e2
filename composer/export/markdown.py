"""article.md: YAML front matter, the title, the escaped paragraphs and the figures (images/)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from composer.article import Article, Figure, Paragraph
from composer.export.content import article_date, figure_alt, figure_caption
from composer.export.escaping import MarkdownState, escape_chunk, md_escape, one_line, safe_markdown
from composer.export.figures import ExportedImage, export_images, write_images
from composer.export_sources import SourceNotes, marker_text
from composer.imagegen import provenance


def _paragraph_markdown(block: Paragraph, state: MarkdownState) -> str:
    if block.is_heading:
        level = min(max(block.level or 2, 1), 6)
        return "#" * level + " " + escape_chunk(one_line(block.text))
    # Only blank lines are trimmed: leading spaces may be an indented code block.
    return safe_markdown(block.text.strip("\r\n").rstrip(), state)


def _figure_markdown(block: Figure, image: ExportedImage) -> str:
    lines = [f"![{md_escape(figure_alt(block))}]({image.name})"]
    if caption := figure_caption(block):
        lines.append(f"*{md_escape(caption)}*")
    return "\n".join(lines)


def _front_matter(article: Article) -> str:
    meta = article.metadata or {}
    fields: dict[str, Any] = {"title": str(article.title)}
    fields["date"] = article_date(article)
    if meta.get("model"):
        fields["model"] = str(meta["model"])
    lines = [f"{key}: {_yaml_scalar(value)}" for key, value in fields.items()]
    generated = provenance.front_matter_entries(article)
    if generated:  # every generated picture, with what made it (the EU AI Act's marking)
        lines.append("generated_images:")
        for entry in generated:
            lines.extend(f"{'  - ' if k == 0 else '    '}{key}: {_yaml_scalar(str(value))}"
                         for k, (key, value) in enumerate(entry.items()))
    return "---\n" + "\n".join(lines) + "\n---\n"


def _yaml_scalar(value: str) -> str:
    # A double-quoted scalar on one line: the YAML emitter escapes newlines, quotes, line
    # separators and control characters, so a hostile title can never end the front matter
    # early or add keys.
    dumped = yaml.safe_dump(value, allow_unicode=True, default_style='"', width=2**31 - 1)
    return dumped.rstrip("\n")


def paragraph_sources(article: Article) -> dict[int, str]:
    """The safe Markdown of every non-empty paragraph and heading, by block position: the .md
    and the HTML are both made from it, so they show the same text."""
    state = MarkdownState()
    sources: dict[int, str] = {}
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Paragraph) and block.text.strip():
            sources[pos] = _paragraph_markdown(block, state)
    return sources


def _markdown_body(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    sources = paragraph_sources(article)
    parts: list[str] = []
    for pos, block in enumerate(article.blocks):
        marker = f" {md_escape(marker_text(notes.markers.get(pos, ())))}" if notes and pos in notes.markers else ""
        if pos in sources:
            parts.append(sources[pos] + marker)
        elif isinstance(block, Figure) and pos in images:
            parts.append(_figure_markdown(block, images[pos]) + marker)
        # A figure slot that found no picture has nothing to show in a finished article.
    if notes:
        parts.append("## Sources")
        parts += [f"{md_escape(f'[{n}]')} “{md_escape(text)}”" for n, text in enumerate(notes.passages, 1)]
    return "\n\n".join(parts) + "\n"


def markdown_document(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    title = md_escape(article.title)
    heading = f"# {title}\n\n" if title else ""
    return _front_matter(article) + "\n" + heading + _markdown_body(article, images, notes)


def write_markdown(article: Article, out_dir: Path, images: dict[int, ExportedImage],
                    notes: SourceNotes | None = None) -> Path:
    write_images(out_dir, images)
    md_path = out_dir / "article.md"
    md_path.write_text(markdown_document(article, images, notes), encoding="utf-8")
    return md_path


def export_markdown(article: Article, out_dir: str | Path) -> Path:
    """Write out_dir/article.md and out_dir/images/; return the Markdown file's path.

    All images are encoded before anything is written, so a bad image leaves nothing behind.
    """
    images = export_images(article)
    return write_markdown(article, Path(out_dir), images)
