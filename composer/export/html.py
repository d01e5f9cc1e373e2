"""article.html: one self-contained, sanitised page (stylesheet inline, pictures embedded), and
the same article as a fragment (the editor's preview, Copy article).

The HTML is rendered from the escaped Markdown (escaping.py) and then sanitised with an
allow-list, a second guard should the escaping ever miss something. The body's parts
(body_parts) are what the other structured formats (docx, pdf, wordpress) are made from, so
no format has text the page has not.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import lxml.html
import markdown
import nh3

from composer.article import Article, Figure
from composer.export.content import byline, figure_alt, figure_caption, visible_controls
from composer.export.escaping import one_line
from composer.export.figures import ExportedImage, export_images
from composer.export.markdown import paragraph_sources
from composer.export_sources import SourceNotes, marker_text

CSS_PATH = Path(__file__).resolve().parents[2] / "assets" / "article.css"


# No <a>: links in model text are text. <img> only for figures, whose src is our own data URI.
_ALLOWED_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "em", "strong", "ul", "ol", "li",
    "blockquote", "code", "pre", "figure", "figcaption", "img", "br", "hr", "sup", "section",
}
_ALLOWED_ATTRIBUTES = {"img": {"src", "alt"}}
_IMAGE_DATA_PREFIXES = ("data:image/jpeg;base64,", "data:image/png;base64,")
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    """Second gate after nh3's scheme check: images may only be our own embedded JPEG/PNG
    (no tracking pixels, no data:text/html)."""
    if tag == "img" and attr == "src":
        return value if value.strip().lower().startswith(_IMAGE_DATA_PREFIXES) else None
    return value


# nh3 serialises every attribute double-quoted, so this matches any img tag it emits.
_IMG_TAG = re.compile(r'<img((?:\s+[^\s"=>/]+(?:="[^"]*")?)*)\s*/?>')
_ATTR = re.compile(r'([^\s"=>/]+)(?:="([^"]*)")?')


def _drop_sourceless_images(fragment: str) -> str:
    """An image whose URL the filter refused would show as a broken-image icon: put its alt
    text in its place instead."""

    def replace(match: re.Match[str]) -> str:
        attrs = {name: html.unescape(value or "") for name, value in _ATTR.findall(match.group(1))}
        return match.group(0) if attrs.get("src") else html.escape(attrs.get("alt", ""))

    return _IMG_TAG.sub(replace, fragment)


def sanitize_html(fragment: str) -> str:
    return _drop_sourceless_images(_nh3_clean(fragment))


def _nh3_clean(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"data"},
        attribute_filter=_filter_attribute,
        link_rel=None,
        strip_comments=True,
    )


@dataclass(frozen=True)
class TextPart:
    """A paragraph or heading (or the Sources list) as sanitised HTML: one or more block
    elements (a paragraph of Markdown may hold a list or a quote). Every format that has
    structure (HTML, PDF, .docx, WordPress) is made from these, so all show the same text."""

    html: str

    def elements(self) -> list[lxml.html.HtmlElement]:
        root = lxml.html.fragment_fromstring(self.html, create_parent="div")
        return list(root)


@dataclass(frozen=True)
class FigurePart:
    image: ExportedImage
    caption: str  # one line, as content.figure_caption gives it (a label included)
    alt: str
    marker: str = ""  # the numbers of the sources it rests on, "[1, 2]"

    def html(self) -> str:
        alt = html.escape(self.alt, quote=True)
        figcaption = f"<figcaption>{html.escape(self.caption)}</figcaption>" if self.caption else ""
        marker = f" <sup>{html.escape(self.marker)}</sup>" if self.marker else ""
        return f'<figure><img src="{self.image.data_uri}" alt="{alt}">{figcaption}</figure>{marker}'


BodyPart = TextPart | FigurePart


def _text_renderer() -> markdown.Markdown:
    """python-markdown for safe paragraph Markdown, without the parts that make links, images or
    raw HTML: should the escaping ever miss one, it still shows as text."""
    md = markdown.Markdown(extensions=["sane_lists"], output_format="html")
    for name in ("reference", "link", "image_link", "image_reference", "short_reference",
                 "short_image_ref", "autolink", "automail", "html"):
        md.inlinePatterns.deregister(name, strict=False)
    md.parser.blockprocessors.deregister("reference", strict=False)
    md.preprocessors.deregister("html_block", strict=False)
    return md


def body_parts(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> list[BodyPart]:
    """The article's body in order, for every structured format. Text XML cannot hold (a NUL,
    an ESC) is made visible first (content.visible_controls), so no format loses it."""
    # One Markdown pass per block: an unclosed tag or fence in one paragraph cannot swallow
    # the figures and paragraphs after it.
    md = _text_renderer()
    sources = paragraph_sources(article)
    parts: list[BodyPart] = []
    for pos, block in enumerate(article.blocks):
        marker = marker_text(notes.markers[pos]) if notes and pos in notes.markers else ""
        sup = f" <sup>{html.escape(marker)}</sup>" if marker else ""
        if pos in sources:
            rendered = md.reset().convert(visible_controls(sources[pos]))
            rendered = rendered[:-4] + sup + "</p>" if sup and rendered.endswith("</p>") else rendered + sup
            parts.append(TextPart(sanitize_html(rendered)))
        elif isinstance(block, Figure) and pos in images:
            parts.append(FigurePart(images[pos], visible_controls(figure_caption(block)),
                                    visible_controls(figure_alt(block)), marker))
    if notes:
        items = "".join(f"<li>“{html.escape(visible_controls(one_line(text)))}”</li>" for text in notes.passages)
        parts.append(TextPart(sanitize_html(f"<section><h2>Sources</h2><ol>{items}</ol></section>")))
    return parts


def body_html(parts: list[BodyPart]) -> str:
    return sanitize_html("\n".join(p.html if isinstance(p, TextPart) else p.html() for p in parts))


def _html_body(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    return body_html(body_parts(article, images, notes))


def _stylesheet() -> str:
    css = CSS_PATH.read_text(encoding="utf-8")
    # The stylesheet is ours, but it sits inside <style>: make sure it cannot close it.
    return css.replace("</", "<\\/")


def _html_lang(article: Article) -> str:
    lang = str((article.metadata or {}).get("language") or "en")
    return lang if _LANG_RE.match(lang) else "en"


def _byline(article: Article) -> str:
    return html.escape(visible_controls(byline(article)))


def html_document(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    title = html.escape(visible_controls(one_line(article.title)), quote=True)
    # The CSP is a second line of defence should anything slip past the sanitiser: no
    # scripts, no network, only inline styles and embedded images.
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_html_lang(article)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="composer">\n'
        f"<title>{title}</title>\n<style>\n{_stylesheet()}</style>\n</head>\n<body>\n<article>\n"
        f'<header><h1>{title}</h1><p class="byline">{_byline(article)}</p></header>\n'
        f"{_html_body(article, images, notes)}\n</article>\n</body>\n</html>\n"
    )


def article_fragment(article: Article) -> str:
    """The article as a sanitised HTML fragment (title and body, images embedded) for a page
    that has its own head, such as the editor's preview."""
    title = html.escape(visible_controls(one_line(article.title)), quote=True)
    return (f'<article class="composer-article"><h1>{title}</h1>\n'
            f"{_html_body(article, export_images(article))}</article>")


def export_html(article: Article) -> str:
    """A self-contained HTML page: images embedded as data URIs, stylesheet inline."""
    return html_document(article, export_images(article))
