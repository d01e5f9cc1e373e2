"""article.docx with python-docx: Word's own styles (Title, Heading 1/2, the body style, Caption,
List Bullet/Number, Quote), each picture inline at the text width with its alt text, and the core
properties (title, date, "written with MODEL").

Built from the same sanitised HTML parts as the page (html.body_parts), walked element by
element, so the text is the HTML's text: every character shows, and no link is made (there is
no <a> in the parts, and runs here are plain text).
"""
from __future__ import annotations

import datetime as _dt
import io

import lxml.html
from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.oxml.parser import OxmlElement
from docx.shared import Emu, Pt
from docx.text.paragraph import Paragraph as DocxParagraph
from PIL import Image

from composer.article import Article
from composer.export.content import article_date, byline, visible_controls, written_with
from composer.export.escaping import one_line
from composer.export.html import BodyPart, FigurePart

_MONO = "Courier New"
# A tall picture at the full text width would fill more than a page and leave its caption alone
# on the next: it is narrowed to keep within this share of the page's height.
_MAX_PICTURE_SHARE = 0.6
_BLOCK_TAGS = {"p", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "section", "figure"}


def docx_bytes(article: Article, parts: list[BodyPart]) -> bytes:
    doc = Document()
    _core_properties(doc, article)
    doc.add_paragraph(visible_controls(one_line(article.title)), style="Title")
    doc.add_paragraph(visible_controls(byline(article)), style="Subtitle")
    for part in parts:
        if isinstance(part, FigurePart):
            _add_figure(doc, part)
        else:
            for element in part.elements():
                _add_block(doc, element, list_depth=0, style=None)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _core_properties(doc: DocxDocument, article: Article) -> None:
    props = doc.core_properties
    # python-docx's template says "python-docx" as author and comment: none of it is the writer's.
    props.author = props.last_modified_by = props.keywords = props.subject = props.category = ""
    props.title = visible_controls(one_line(article.title))
    props.comments = visible_controls(written_with(article))
    try:
        created = _dt.datetime.fromisoformat(article_date(article))
    except ValueError:
        created = _dt.datetime.now()
    props.created = props.modified = created
    props.revision = 1


def _add_figure(doc: DocxDocument, part: FigurePart) -> None:
    section = doc.sections[-1]
    # python-docx types these Optional (a section may leave them unset); its template sets them.
    assert section.page_width and section.left_margin and section.right_margin and section.page_height
    text_width = section.page_width - section.left_margin - section.right_margin
    max_height = int(section.page_height * _MAX_PICTURE_SHARE)
    with Image.open(io.BytesIO(part.image.data)) as img:
        w, h = img.size
    width = min(text_width, int(max_height * w / h)) if h else text_width
    para = doc.add_paragraph()
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    # The picture stays on the page of its caption.
    para.paragraph_format.keep_with_next = bool(part.caption or part.marker)
    shape = para.add_run().add_picture(io.BytesIO(part.image.data), width=Emu(width))
    # Word's "Alt Text" is the drawing's description (docPr/@descr); python-docx has no API for it.
    doc_pr = shape._inline.docPr
    doc_pr.set("descr", part.alt)
    doc_pr.set("title", part.alt)
    caption = " ".join(bit for bit in (part.caption, part.marker) if bit)
    if caption:
        doc.add_paragraph(caption, style="Caption").alignment = WD_ALIGN_PARAGRAPH.CENTER


def _heading_style(level: int) -> str:
    # The title is Title; the article's headings are level 2 (outline points) and 3 (sub-points).
    return f"Heading {min(max(level - 1, 1), 6)}"


def _add_block(doc: DocxDocument, el: lxml.html.HtmlElement, list_depth: int, style: str | None) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
        _inline(doc.add_paragraph(style=_heading_style(int(tag[1]))), el)
    elif tag == "p":
        _inline(doc.add_paragraph(style=style), el)
    elif tag in {"ul", "ol"}:
        kind = "List Bullet" if tag == "ul" else "List Number"
        depth = min(list_depth + 1, 3)
        for li in el:
            _add_list_item(doc, li, f"{kind} {depth}" if depth > 1 else kind, depth)
    elif tag == "blockquote":
        _add_children(doc, el, list_depth, "Quote")
    elif tag == "pre":
        para = doc.add_paragraph(style=style)
        # A browser shows no last empty line for the newline that ends a code block.
        run = para.add_run(el.text_content().rstrip("\n"))
        run.font.name = _MONO
        run.font.size = Pt(9.5)
    elif tag == "hr":
        _rule(doc.add_paragraph())
    else:  # section (Sources), and anything else that holds blocks
        _add_children(doc, el, list_depth, style)


def _add_children(doc: DocxDocument, el: lxml.html.HtmlElement, list_depth: int, style: str | None) -> None:
    if el.text and el.text.strip():
        doc.add_paragraph(style=style).add_run(_flow(el.text))
    for child in el:
        _add_block(doc, child, list_depth, style)
        if child.tail and child.tail.strip():
            doc.add_paragraph(style=style).add_run(_flow(child.tail))


def _add_list_item(doc: DocxDocument, li: lxml.html.HtmlElement, style: str, depth: int) -> None:
    """A list item's inline text (and its first <p>, in a loose list) is one paragraph in the
    list style; a nested list or further paragraphs follow it."""
    para = doc.add_paragraph(style=style)
    _add_run(para, li.text, {})
    first_p = True
    for child in li:
        if child.tag == "p" and first_p:
            _inline(para, child)
            first_p = False
        elif child.tag in _BLOCK_TAGS:
            _add_block(doc, child, depth, None)
        else:
            _inline_element(para, child, {})
        _add_run(para, _tail(child), {})
    _trim(para)


def _inline(para: DocxParagraph, el: lxml.html.HtmlElement) -> None:
    _add_run(para, el.text, {})
    for child in el:
        _inline_element(para, child, {})
        _add_run(para, _tail(child), {})
    _trim(para)


def _trim(para: DocxParagraph) -> None:
    """Spaces at a paragraph's ends show nothing on a page (the source's line breaks around a
    nested list, say); in Word they would be typed text."""
    runs = [r for r in para.runs if r.text]
    if runs:
        runs[0].text = runs[0].text.lstrip(" ")
        runs[-1].text = runs[-1].text.rstrip(" ")


def _tail(el: lxml.html.HtmlElement) -> str | None:
    # The source's newline after a <br> is no space on the page: the line starts after it.
    return el.tail.lstrip("\r\n") if el.tag == "br" and el.tail else el.tail


def _inline_element(para: DocxParagraph, el: lxml.html.HtmlElement, fmt: dict[str, bool]) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag == "br":
        para.add_run().add_break()
        return
    fmt = {**fmt, "bold": fmt.get("bold", False) or tag == "strong", "italic": fmt.get("italic", False) or tag == "em",
           "code": fmt.get("code", False) or tag == "code", "sup": fmt.get("sup", False) or tag == "sup"}
    _add_run(para, el.text, fmt)
    for child in el:
        _inline_element(para, child, fmt)
        _add_run(para, _tail(child), fmt)


def _flow(text: str) -> str:
    # A line break inside an HTML paragraph is a space on the page; a run would make it a break.
    return text.replace("\r\n", " ").replace("\n", " ")


def _add_run(para: DocxParagraph, text: str | None, fmt: dict[str, bool]) -> None:
    if not text:
        return
    run = para.add_run(_flow(text))
    run.bold = fmt.get("bold") or None
    run.italic = fmt.get("italic") or None
    if fmt.get("sup"):
        run.font.superscript = True
    if fmt.get("code"):
        run.font.name = _MONO


def _rule(para: DocxParagraph) -> None:
    """A horizontal rule as Word draws one: the paragraph's bottom border."""
    ppr = para._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "auto")):
        bottom.set(qn(key), value)
    borders.append(bottom)
    ppr.append(borders)


