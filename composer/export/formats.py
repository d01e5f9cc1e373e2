"""The export formats by name, and how a writer names a selection of them ("md,html,docx")."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from composer.export.base import Format, Source
from composer.export.docx import docx_bytes
from composer.export.html import body_parts, html_document
from composer.export.markdown import markdown_document
from composer.export.pdf import pdf_bytes
from composer.export.wordpress import wordpress_markup


@dataclass(frozen=True)
class _Format:
    name: str
    key: str
    filename: str
    _render: Callable[[Source], bytes]

    def render(self, source: Source) -> bytes:
        return self._render(source)


def _md(s: Source) -> bytes:
    return markdown_document(s.article, s.images, s.notes).encode("utf-8")


def _html(s: Source) -> bytes:
    return html_document(s.article, s.images, s.notes).encode("utf-8")


def _docx(s: Source) -> bytes:
    return docx_bytes(s.article, body_parts(s.article, s.images, s.notes))


def _pdf(s: Source) -> bytes:
    return pdf_bytes(html_document(s.article, s.images, s.notes))


def _wp(s: Source) -> bytes:
    return wordpress_markup(s.article, body_parts(s.article, s.images, s.notes)).encode("utf-8")


FORMATS: dict[str, Format] = {f.name: f for f in (
    _Format("md", "markdown", "article.md", _md),
    _Format("html", "html", "article.html", _html),
    _Format("docx", "docx", "article.docx", _docx),
    _Format("pdf", "pdf", "article.pdf", _pdf),
    _Format("wp", "wp", "article.wp.html", _wp),
)}
DEFAULT_FORMATS = ("md", "html", "docx")
ALL_FORMATS = tuple(FORMATS)


class FormatError(ValueError):
    """A --formats list naming no format, or one that does not exist."""


def parse_formats(text: str) -> tuple[str, ...]:
    """"md, html,docx" -> ("md", "html", "docx"), in the order written, each once."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise FormatError(f"unknown format {', '.join(map(repr, unknown))}; choose from {','.join(FORMATS)}"
                          if unknown else f"no format given; choose from {','.join(FORMATS)}")
    return tuple(dict.fromkeys(names))
