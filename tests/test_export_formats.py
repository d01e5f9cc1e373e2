"""Word, PDF and WordPress exports (issue 21), each read back by a reader that is not ours:
python-docx and pandoc for the .docx, poppler for the PDF, WordPress's block grammar for the
block markup. Hostile model text survives every format as the characters it is, and links nothing."""
from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from pathlib import Path

import docx
import lxml.html
import pytest
from PIL import Image

from composer.article import Article, Figure, ImageRef, Paragraph
from composer.export import MANIFEST, FormatError, parse_formats, read_bundle, write_bundle
from composer.export.testing import (
    pandoc_ast,
    pandoc_images,
    pandoc_text,
    parse_wp_blocks,
    pdf_fonts,
    pdf_page_png,
    pdf_text,
)

LIBRARY = Path(__file__).resolve().parent.parent / "assets" / "library"
COFFEE, CAT = LIBRARY / "coffee.jpg", LIBRARY / "cat.jpg"
ALL = ("md", "html", "docx", "pdf", "wp")

# What the model may write that a format could turn into markup, a link or nothing at all.
HOSTILE = ('Angle <script>alert(1)</script> <b>bold?</b> a [link](https://evil.example) and '
           '<a href="javascript:x">a</a> 3 < 4 & 5 > 2 &amp; bell\x07 esc\x1b nul\x00 '
           '<!-- wp:html --><iframe></iframe><!-- /wp:html --> 街角咖啡馆 "quotes"')
HOSTILE_SEEN = (HOSTILE.replace("\x07", "\u2407").replace("\x1b", "\u241b").replace("\x00", "\u2400"))
HOSTILE_CAPTION = 'Cup <img src=x onerror=alert(1)> [c](http://e) 一杯'
HOSTILE_TITLE = "Title <i>x</i> [t](http://t) 标题\x07"


def ref(path: Path) -> ImageRef:
    return ImageRef(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), path=str(path))


def article() -> Article:
    return Article(
        title="A morning at the café",
        blocks=(
            Paragraph("The first shot", kind="heading", level=2),
            Paragraph("The owner pulls the first shot at *6:45*, before the doors **open**."),
            Figure(image=ref(COFFEE), caption="An espresso on a red saucer", alt="Espresso cup", source="library"),
            Paragraph("The regulars", kind="heading", level=3),
            Paragraph("- the baker\n- the postman"),
            Paragraph("The cat sleeps on the window seat."),
            Figure(image=ref(CAT), caption="The café cat", alt="A tabby cat", source="upload"),
            Figure(image=None, caption="a slot nothing filled"),
            Paragraph("Closing time comes early."),
        ),
        metadata={"model": "embedded:test-model", "date": "2026-11-30"},
    )


def hostile() -> Article:
    return Article(HOSTILE_TITLE, (Paragraph("Heading 标题 <h1>", kind="heading", level=2), Paragraph(HOSTILE),
                                   Figure(image=ref(COFFEE), caption=HOSTILE_CAPTION, alt=HOSTILE_CAPTION)),
                   {"model": "m"})


def chinese() -> Article:
    return Article("街角咖啡馆的一个早晨", (
        Paragraph("开门之前", kind="heading", level=2),
        Paragraph("店主六点四十五分做第一杯咖啡，常客们在门外排队。"),
        Figure(image=ref(COFFEE), caption="一杯意式浓缩", alt="咖啡"),
        Paragraph("猫在窗台上睡觉。"),
    ), {"language": "zh", "model": "m", "date": "2026-11-30"})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("formats") / "bundle"
    paths = write_bundle(article(), out, formats=ALL)
    assert paths.skipped == {}
    return paths


@pytest.fixture(scope="module")
def hostile_bundle(tmp_path_factory):
    return write_bundle(hostile(), tmp_path_factory.mktemp("hostile") / "bundle", formats=ALL)


def squash(text: str) -> str:
    return " ".join(text.split())


# --- .docx read by python-docx -------------------------------------------------------------

def test_docx_styles_order_pictures_and_captions(bundle):
    doc = docx.Document(str(bundle["docx"]))
    body = [(p.style.name, p.text, bool(p._p.xpath(".//pic:pic"))) for p in doc.paragraphs]
    assert body == [
        ("Title", "A morning at the café", False),
        ("Subtitle", "2026-11-30 · written with embedded:test-model", False),
        ("Heading 1", "The first shot", False),
        ("Normal", "The owner pulls the first shot at 6:45, before the doors open.", False),
        ("Normal", "", True),
        ("Caption", "An espresso on a red saucer", False),
        ("Heading 2", "The regulars", False),
        ("List Bullet", "the baker", False),
        ("List Bullet", "the postman", False),
        ("Normal", "The cat sleeps on the window seat.", False),
        ("Normal", "", True),
        ("Caption", "The café cat", False),
        ("Normal", "Closing time comes early.", False),
    ]
    runs = {r.text: r for p in doc.paragraphs for r in p.runs}
    assert runs["6:45"].italic and runs["open"].bold
    # Each picture is inline, at the text width, with its alt text as Word's description.
    section = doc.sections[0]
    text_width = section.page_width - section.left_margin - section.right_margin
    shapes = doc.inline_shapes
    assert len(shapes) == 2
    assert [s._inline.docPr.get("descr") for s in shapes] == ["Espresso cup", "A tabby cat"]
    assert all(abs(s.width - text_width) <= 1 for s in shapes)
    # The picture keeps with its caption on one page.
    assert all(p.paragraph_format.keep_with_next for p in doc.paragraphs if p._p.xpath(".//pic:pic"))
    props = doc.core_properties
    assert props.title == "A morning at the café"
    assert props.created.date().isoformat() == "2026-11-30"
    assert props.comments == "written with embedded:test-model"
    assert props.author == ""  # not python-docx's template author


# --- .docx read by pandoc -------------------------------------------------------------------

def test_docx_as_pandoc_reads_it(bundle):
    ast = pandoc_ast(bundle["docx"])
    assert pandoc_text(ast["meta"]["title"]["c"]) == "A morning at the café"
    blocks = [(b["t"], squash(pandoc_text(b["c"][-1] if b["t"] == "Header" else b["c"]))) for b in ast["blocks"]]
    kinds = [k for k, _ in blocks]
    assert kinds == ["Header", "Para", "Figure", "Header", "BulletList", "Para", "Figure", "Para"]
    headers = [b for b in ast["blocks"] if b["t"] == "Header"]
    assert [(h["c"][0], pandoc_text(h["c"][2])) for h in headers] == [(1, "The first shot"), (2, "The regulars")]
    figures = [b for b in ast["blocks"] if b["t"] == "Figure"]
    # A pandoc Figure: [attr, caption, body]; the body holds the Image whose attributes keep the alt text.
    assert [squash(pandoc_text(f["c"][1])) for f in figures] == ["An espresso on a red saucer", "The café cat"]
    assert [[i["alt"] for i in pandoc_images(f["c"][2])] for f in figures] == [["Espresso cup"], ["A tabby cat"]]
    assert "Closing time comes early." in blocks[-1][1]


def test_docx_shows_hostile_text_as_written_and_links_nothing(hostile_bundle):
    path = hostile_bundle["docx"]
    doc = docx.Document(str(path))
    texts = [p.text for p in doc.paragraphs]
    assert texts[0] == "Title <i>x</i> [t](http://t) 标题\u2407"
    assert "Heading 标题 <h1>" in texts
    assert squash(HOSTILE_SEEN) in [squash(t) for t in texts]
    assert squash(HOSTILE_CAPTION) in texts
    assert doc.inline_shapes[0]._inline.docPr.get("descr") == squash(HOSTILE_CAPTION)
    with zipfile.ZipFile(path) as z:
        document = z.read("word/document.xml").decode("utf-8")
        rels = z.read("word/_rels/document.xml.rels").decode("utf-8")
    assert "<w:hyperlink" not in document and "hyperlink" not in rels
    assert "evil.example" not in rels and "iframe" not in rels
    # pandoc agrees: the text is there, and there is no Link anywhere.
    ast = pandoc_ast(path)
    assert '"Link"' not in str(ast).replace("'", '"')
    assert squash(HOSTILE_SEEN) in squash(pandoc_text(ast["blocks"]))


# --- PDF read by poppler --------------------------------------------------------------------

def test_pdf_text_in_order_with_every_caption(bundle, tmp_path):
    text = squash(pdf_text(bundle["pdf"]))
    order = ["A morning at the café", "2026-11-30 · written with embedded:test-model", "The first shot",
             "The owner pulls the first shot at 6:45", "An espresso on a red saucer", "The regulars", "the baker",
             "the postman", "The cat sleeps on the window seat.", "The café cat", "Closing time comes early."]
    at = [text.find(s) for s in order]
    assert all(i >= 0 for i in at), dict(zip(order, at))
    assert at == sorted(at)
    assert "a slot nothing filled" not in text
    assert re.search(r"\b1\s*/\s*2\b", text) and re.search(r"\b2\s*/\s*2\b", text)  # page numbers
    page = pdf_page_png(bundle["pdf"], tmp_path / "page")
    with Image.open(page) as img:
        assert img.width < img.height  # a portrait page, A4
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 1000  # a photograph on it, not just text


def test_pdf_keeps_each_figure_with_its_caption(tmp_path):
    """Enough text to push the second picture near a page break: its caption is on its page."""
    blocks = [Paragraph("A long paragraph of words about the morning. " * 30) for _ in range(3)]
    art = Article("Long", (*blocks, Figure(image=ref(CAT), caption="The cat by the window", alt="cat"),
                           Paragraph("After.")))
    paths = write_bundle(art, tmp_path / "b", formats=("pdf",))
    pages = pdf_text(paths["pdf"]).split("\f")
    with_caption = [i for i, p in enumerate(pages) if "The cat by the window" in p]
    assert len(with_caption) == 1
    import subprocess
    images = subprocess.run(["pdfimages", "-list", str(paths["pdf"])], capture_output=True, text=True, check=True)
    page_of_picture = {int(line.split()[0]) for line in images.stdout.splitlines()[2:] if line.strip()}
    assert page_of_picture == {with_caption[0] + 1}


def unspaced(text: str) -> str:
    """Text without any whitespace: a line of the page may break inside a word ("--" | ">")."""
    return "".join(text.split())


def test_pdf_shows_hostile_text_as_written(hostile_bundle):
    text = unspaced(pdf_text(hostile_bundle["pdf"]))
    assert unspaced(HOSTILE_SEEN) in text
    assert unspaced(HOSTILE_CAPTION) in text
    assert unspaced("Title <i>x</i> [t](http://t) 标题\u2407") in text
    # No link annotations: nothing in the page is clickable.
    assert b"/URI" not in hostile_bundle["pdf"].read_bytes()


def test_chinese_article_keeps_its_characters_in_every_format(tmp_path):
    paths = write_bundle(chinese(), tmp_path / "zh", formats=ALL)
    words = ["街角咖啡馆的一个早晨", "开门之前", "店主六点四十五分做第一杯咖啡，常客们在门外排队。",
             "一杯意式浓缩", "猫在窗台上睡觉。", "由m撰写"]  # the byline in the article's language too
    pdf = unspaced(pdf_text(paths["pdf"]))
    assert all(w in pdf for w in words)
    # The characters are drawn with a CJK font embedded in the PDF (not boxes from a Latin one).
    assert any("CJK" in name for name in pdf_fonts(paths["pdf"])), pdf_fonts(paths["pdf"])
    doc_text = unspaced("\n".join(p.text for p in docx.Document(str(paths["docx"])).paragraphs))
    assert all(w in doc_text for w in words)
    blocks, _ = parse_wp_blocks(paths["wp"].read_text(encoding="utf-8"))
    wp_text = "".join(lxml.html.fragment_fromstring(b.inner_html, create_parent="div").text_content() for b in blocks)
    assert all(w in unspaced(wp_text) for w in words[:-1])  # (WordPress gets no byline: a post has its own)


def test_missing_pdf_library_is_one_line_and_the_rest_exports(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as with no Pango
    paths = write_bundle(article(), tmp_path / "b", formats=ALL)
    assert set(paths.skipped) == {"pdf"}
    reason = paths.skipped["pdf"]
    assert "\n" not in reason and reason.startswith("PDF not exported") and "WeasyPrint" in reason
    assert "pdf" not in paths and not (tmp_path / "b" / "article.pdf").exists()
    assert all(paths[k].is_file() for k in ("markdown", "html", "docx", "wp", "json", "zip"))
    with zipfile.ZipFile(paths["zip"]) as z:
        assert "article.pdf" not in z.namelist() and "article.docx" in z.namelist()


# --- WordPress block markup -----------------------------------------------------------------

def test_wordpress_markup_is_blocks(bundle):
    blocks, outside = parse_wp_blocks(bundle["wp"].read_text(encoding="utf-8"))
    assert outside == ""  # nothing WordPress would leave as a Classic block
    assert [(b.name, b.attrs) for b in blocks] == [
        ("core/heading", {"level": 1}), ("core/heading", {}), ("core/paragraph", {}),
        ("core/image", {"sizeSlug": "full"}), ("core/heading", {"level": 3}), ("core/list", {}),
        ("core/paragraph", {}), ("core/image", {"sizeSlug": "full"}), ("core/paragraph", {})]
    texts = [squash(lxml.html.fragment_fromstring(b.inner_html, create_parent="div").text_content()) for b in blocks]
    assert texts[:3] == ["A morning at the café", "The first shot",
                         "The owner pulls the first shot at 6:45, before the doors open."]
    assert [i.name for i in blocks[5].inner_blocks] == ["core/list-item", "core/list-item"]
    assert "wp-block-list" in blocks[5].inner_html
    heading = lxml.html.fragment_fromstring(blocks[4].inner_html.strip())
    assert heading.tag == "h3" and heading.get("class") == "wp-block-heading"
    for block, alt, caption in ((blocks[3], "Espresso cup", "An espresso on a red saucer"),
                                (blocks[7], "A tabby cat", "The café cat")):
        figure = lxml.html.fragment_fromstring(block.inner_html.strip())
        assert figure.tag == "figure" and "wp-block-image" in figure.get("class")
        img = figure.find("img")
        assert img.get("alt") == alt and img.get("src").startswith("data:image/jpeg;base64,")
        assert figure.find("figcaption").text_content() == caption
        assert figure.find("figcaption").get("class") == "wp-element-caption"


def test_wordpress_shows_hostile_text_as_written_and_opens_no_block(hostile_bundle):
    markup = hostile_bundle["wp"].read_text(encoding="utf-8")
    blocks, outside = parse_wp_blocks(markup)
    assert outside == ""
    # The "<!-- wp:html -->" in the model's text is text: no html block, no iframe, no link.
    assert [b.name for b in blocks] == ["core/heading", "core/heading", "core/paragraph", "core/image"]
    root = lxml.html.fragment_fromstring(markup, create_parent="div")
    assert not root.xpath("//a | //iframe | //script | //b | //i | //h1[position()>1]")
    assert [el.get("src")[:22] for el in root.iter("img")] == ["data:image/jpeg;base64"]
    texts = [squash(lxml.html.fragment_fromstring(b.inner_html, create_parent="div").text_content()) for b in blocks]
    assert texts[0] == "Title <i>x</i> [t](http://t) 标题\u2407"
    assert texts[1] == "Heading 标题 <h1>"
    assert texts[2] == squash(HOSTILE_SEEN)
    assert texts[3] == squash(HOSTILE_CAPTION)


# --- the bundle holds every format ---------------------------------------------------------

def test_manifest_and_zip_list_every_format_and_a_bundle_is_replaced_again(bundle):
    out = bundle["json"].parent
    names = {"article.md", "article.html", "article.docx", "article.pdf", "article.wp.html", "article.json"}
    import json
    listed = set(json.loads((out / MANIFEST).read_text())["files"])
    assert names | {"article.zip"} <= listed
    with zipfile.ZipFile(bundle["zip"]) as z:
        assert names <= set(z.namelist())
    # Replacing the bundle with fewer formats removes what it wrote; a writer's file stops it.
    again = write_bundle(article(), out, formats=("md",))
    assert not (out / "article.docx").exists() and again["markdown"].exists()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_bundle(article(), out, formats=ALL)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_zip_with_every_format_reopens(bundle, tmp_path):
    reopened = read_bundle(bundle["zip"], extract_to=tmp_path / "x")
    assert reopened.title == "A morning at the café"
    assert len([b for b in reopened.figures if b.image]) == 2


def test_formats_by_name():
    assert parse_formats("md, HTML,docx,md") == ("md", "html", "docx")
    with pytest.raises(FormatError, match="'odt'.*md,html,docx,pdf,wp"):
        parse_formats("md,odt")
    with pytest.raises(FormatError, match="no format"):
        parse_formats(" , ")


def test_markdown_structures_become_word_styles_and_blocks(tmp_path):
    """Lists, quotes, code and a rule in a paragraph's Markdown: Word's list, Quote and monospace
    runs; WordPress's list, quote, code and separator blocks."""
    text = ("Intro with `a code` span, a <tag> and a line  \nbreak.\n\n1. first\n2. second\n    - nested\n\n"
            "> a quoted *line*\n\n    def f():\n        return 1\n\n---\n\nAfter the rule.")
    paths = write_bundle(Article("Structures", (Paragraph(text),)), tmp_path / "b", formats=("docx", "wp"))
    doc = docx.Document(str(paths["docx"]))
    paras = [(p.style.name, p.text) for p in doc.paragraphs][2:]
    assert paras == [
        ("Normal", "Intro with a code span, a <tag> and a line\nbreak."),
        ("List Number", "first"), ("List Number", "second"), ("List Bullet 2", "nested"),
        ("Quote", "a quoted line"),
        ("Normal", "def f():\n    return 1"),
        ("Normal", ""),
        ("Normal", "After the rule."),
    ]
    code_runs = [r for p in doc.paragraphs for r in p.runs if r.font.name == "Courier New"]
    assert [r.text for r in code_runs] == ["a code", "def f():\n    return 1"]
    assert doc.paragraphs[2 + 6]._p.xpath(".//w:pBdr")  # the rule is a bottom border
    blocks, outside = parse_wp_blocks(paths["wp"].read_text(encoding="utf-8"))
    assert outside == ""
    assert [(b.name, b.attrs) for b in blocks] == [
        ("core/heading", {"level": 1}), ("core/paragraph", {}), ("core/list", {"ordered": True}),
        ("core/quote", {}), ("core/code", {}), ("core/separator", {}), ("core/paragraph", {})]
    second = blocks[2].inner_blocks[1]
    assert [b.name for b in second.inner_blocks] == ["core/list"]  # the nested list is a block in the item
    assert [b.name for b in blocks[3].inner_blocks] == ["core/paragraph"]
    code = lxml.html.fragment_fromstring(blocks[4].inner_html.strip())
    assert code.get("class") == "wp-block-code" and code.text_content() == "def f():\n    return 1"
