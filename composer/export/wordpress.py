"""article.wp.html: the article in WordPress's block markup (Gutenberg), to paste into the
post editor's code editor, where each paragraph, heading, list, quote and picture is a block.

Made from the same sanitised HTML parts as the page, element by element, in the form each core
block saves itself (so the editor finds the blocks valid): `<!-- wp:paragraph -->` around a <p>,
`<!-- wp:heading {"level":3} -->` around an <h3 class="wp-block-heading">, an image block
around a <figure class="wp-block-image"> whose picture is a data: URL (the file pastes with its
pictures; WordPress can move them into its media library). The title opens the markup as a
level-1 heading block: a post's title is a separate field, and the title is not lost.

Text goes through lxml's serialiser, which escapes `<`, `>` and `&`, so model text can never
open a block comment (`<!-- wp:`) or an element.
"""
from __future__ import annotations

import html
import json
from collections.abc import Mapping

import lxml.html

from composer.article import Article
from composer.export.content import visible_controls
from composer.export.escaping import one_line
from composer.export.html import BodyPart, FigurePart

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


def _block(name: str, inner: str, attrs: Mapping[str, object] | None = None) -> str:
    opener = f"<!-- wp:{name} {json.dumps(attrs, separators=(',', ':'))} -->" if attrs else f"<!-- wp:{name} -->"
    return f"{opener}\n{inner}\n<!-- /wp:{name} -->"


def _serialise(el: lxml.html.HtmlElement) -> str:
    # The element alone: its tail (text after it) belongs to the block around it.
    tail, el.tail = el.tail, None
    try:
        return lxml.html.tostring(el, encoding="unicode", method="html")
    finally:
        el.tail = tail


def _heading(level: int, inner_html: str) -> str:
    attrs = {"level": level} if level != 2 else None
    return _block("heading", f'<h{level} class="wp-block-heading">{inner_html}</h{level}>', attrs)


def _inner(el: lxml.html.HtmlElement) -> str:
    text = html.escape(el.text or "", quote=False)
    return text + "".join(lxml.html.tostring(c, encoding="unicode", method="html") for c in el)


def _element_blocks(el: lxml.html.HtmlElement) -> list[str]:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in _HEADINGS:
        return [_heading(int(tag[1]), _inner(el))]
    if tag == "p":
        return [_block("paragraph", _serialise(el))]
    if tag in {"ul", "ol"}:
        items = "\n".join(_list_item(li) for li in el)
        attrs = {"ordered": True} if tag == "ol" else None
        return [_block("list", f'<{tag} class="wp-block-list">{items}</{tag}>', attrs)]
    if tag == "blockquote":
        inner = "\n\n".join(b for child in el for b in _element_blocks(child))
        return [_block("quote", f'<blockquote class="wp-block-quote">{inner}</blockquote>')]
    if tag == "pre":
        code = html.escape(el.text_content().rstrip("\n"), quote=False)
        return [_block("code", f'<pre class="wp-block-code"><code>{code}</code></pre>')]
    if tag == "hr":
        return [_block("separator", '<hr class="wp-block-separator has-alpha-channel-opacity"/>')]
    # section (the Sources list) and anything else that only holds blocks
    text = (el.text or "").strip()
    blocks = [_block("paragraph", f"<p>{html.escape(text, quote=False)}</p>")] if text else []
    return blocks + [b for child in el for b in _element_blocks(child)]


def _list_item(li: lxml.html.HtmlElement) -> str:
    # A loose list's <p> inside an item is the item's text in a list-item block.
    # A nested list is a list block inside the item, as the list block saves it.
    inner = "".join(_inner(c) if c.tag == "p"
                    else "\n".join(_element_blocks(c)) + html.escape(c.tail or "", quote=False) if c.tag in {"ul", "ol"}
                    else lxml.html.tostring(c, encoding="unicode", method="html")
                    for c in li)
    return _block("list-item", f"<li>{html.escape(li.text or '', quote=False)}{inner}</li>")


def _figure(part: FigurePart) -> str:
    alt = html.escape(part.alt, quote=True)
    caption = html.escape(" ".join(bit for bit in (part.caption, part.marker) if bit), quote=False)
    figcaption = f'<figcaption class="wp-element-caption">{caption}</figcaption>' if caption else ""
    img = f'<img src="{part.image.data_uri}" alt="{alt}"/>'
    figure = f'<figure class="wp-block-image size-full">{img}{figcaption}</figure>'
    return _block("image", figure, {"sizeSlug": "full"})


def wordpress_markup(article: Article, parts: list[BodyPart]) -> str:
    blocks = [_heading(1, html.escape(visible_controls(one_line(article.title)), quote=False))]
    for part in parts:
        if isinstance(part, FigurePart):
            blocks.append(_figure(part))
        else:
            blocks += [b for el in part.elements() for b in _element_blocks(el)]
    return "\n\n".join(blocks) + "\n"
