"""article.html: one self-contained, sanitised page (stylesheet inline, pictures embedded), and
the same article as a fragment for the editor's preview.

The HTML is rendered from the escaped Markdown (escaping.py) and then sanitised with an
allow-list, a second guard should the escaping ever miss something.
"""
from __future__ import annotations

import datetime as _dt
import html
import re
from pathlib import Path

import markdown
import nh3

from composer.article import Article, Figure
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


def _figure_html(block: Figure, image: ExportedImage) -> str:
    alt = html.escape(one_line(block.alt or block.caption), quote=True)
    caption = one_line(block.caption)
    figcaption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{image.data_uri}" alt="{alt}">{figcaption}</figure>'


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


def _html_body(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    # One Markdown pass per block: an unclosed tag or fence in one paragraph cannot swallow
    # the figures and paragraphs after it.
    md = _text_renderer()
    sources = paragraph_sources(article)
    parts: list[str] = []
    for pos, block in enumerate(article.blocks):
        marker = (f' <sup>{html.escape(marker_text(notes.markers[pos]))}</sup>'
                  if notes and pos in notes.markers else "")
        if pos in sources:
            rendered = md.reset().convert(sources[pos])
            parts.append(rendered[:-4] + marker + "</p>" if marker and rendered.endswith("</p>") else rendered + marker)
        elif isinstance(block, Figure) and pos in images:
            parts.append(_figure_html(block, images[pos]) + marker)
    if notes:
        items = "".join(f"<li>“{html.escape(one_line(text))}”</li>" for text in notes.passages)
        parts.append(f'<section><h2>Sources</h2><ol>{items}</ol></section>')
    return sanitize_html("\n".join(parts))


def _stylesheet() -> str:
    css = CSS_PATH.read_text(encoding="utf-8")
    # The stylesheet is ours, but it sits inside <style>: make sure it cannot close it.
    return css.replace("</", "<\\/")


def _html_lang(article: Article) -> str:
    lang = str((article.metadata or {}).get("language") or "en")
    return lang if _LANG_RE.match(lang) else "en"


def _byline(article: Article) -> str:
    meta = article.metadata or {}
    bits = [str(meta.get("date") or _dt.date.today().isoformat())]
    if meta.get("model"):
        bits.append(f"written with {meta['model']}")
    return html.escape(" · ".join(bits))


def html_document(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    title = html.escape(one_line(article.title), quote=True)
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
    title = html.escape(one_line(article.title), quote=True)
    return (f'<article class="composer-article"><h1>{title}</h1>\n'
            f"{_html_body(article, export_images(article))}</article>")


def export_html(article: Article) -> str:
    """A self-contained HTML page: images embedded as data URIs, stylesheet inline."""
    return html_document(article, export_images(article))
