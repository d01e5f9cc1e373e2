"""Export and Copy article in a real browser against a real `python app.py` (issue 21): one
download per format, each read back by a reader that is not ours, and a copy that pastes into a
contenteditable page with its headings, pictures and captions."""
import zipfile
from pathlib import Path

import docx
import lxml.html
import pytest

from composer.app_testing import CHROMIUM, ROOT, EditorPage, screenshot_dir
from composer.article import Article, Figure, Paragraph
from composer.export import write_bundle
from composer.export.testing import parse_wp_blocks, pdf_text
from composer.images import load_image

LIB = ROOT / "assets/library"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="needs Debian's chromium (apt-get install chromium)")]

TITLE = "A morning at the café <b>"
HEADINGS = ["Before the doors open", "The café cat"]
PARAGRAPHS = ["The owner pulls the first shot at 6:45 [see](http://x) 咖啡.", "Regulars arrive at seven.",
              "The cat sleeps on the window seat."]
CAPTIONS = ["An espresso on a red saucer", "The cat by the window"]


def article_zip(tmp_path) -> Path:
    coffee, cat = (load_image(LIB / name).ref for name in ("coffee.jpg", "cat.jpg"))
    article = Article(TITLE, (
        Paragraph(HEADINGS[0], kind="heading", level=2), Paragraph(PARAGRAPHS[0]),
        Figure(coffee, CAPTIONS[0], "Espresso cup", "library"), Paragraph(PARAGRAPHS[1]),
        Paragraph(HEADINGS[1], kind="heading", level=2), Paragraph(PARAGRAPHS[2]),
        Figure(cat, CAPTIONS[1], "A tabby cat", "library"),
    ), {"request": {"title": TITLE}})
    return write_bundle(article, tmp_path / "bundle")["zip"]


@pytest.fixture
def editor(server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1300, "height": 1400},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    w = EditorPage(page, server.url)
    w.open_file(article_zip(tmp_path))
    page.wait_for_selector("#status:has-text('Opened')", timeout=60_000)
    yield w
    context.close()


def download(w: EditorPage, label: str, to: Path) -> Path:
    with w.page.expect_download() as dl:
        w.page.get_by_role("button", name=label, exact=True).click()
    dl.value.save_as(to)
    return to


def test_export_gives_one_download_per_format(editor, tmp_path):
    w = editor
    w.act("Export", "Exported")
    w.page.screenshot(path=str(screenshot_dir() / "editor-export.png"))
    doc = docx.Document(str(download(w, "Download .docx", tmp_path / "a.docx")))
    paras = [(p.style.name, p.text) for p in doc.paragraphs if p.text]
    assert paras[0] == ("Title", TITLE)
    assert [t for s, t in paras if s.startswith("Heading")] == HEADINGS
    assert [t for s, t in paras if s == "Caption"] == CAPTIONS
    assert len(doc.inline_shapes) == 2
    pdf = "".join(pdf_text(download(w, "Download .pdf", tmp_path / "a.pdf")).split())
    at = [pdf.find("".join(s.split())) for s in [TITLE, HEADINGS[0], CAPTIONS[0], HEADINGS[1], CAPTIONS[1]]]
    assert -1 not in at and at == sorted(at)
    blocks, outside = parse_wp_blocks(download(w, "Download WordPress", tmp_path / "a.wp.html").read_text())
    assert outside == "" and [b.name for b in blocks].count("core/image") == 2
    md = download(w, "Download .md", tmp_path / "a.md").read_text()
    assert all(p.split(" [")[0] in md for p in PARAGRAPHS)
    with zipfile.ZipFile(download(w, "Download .zip", tmp_path / "a.zip")) as z:
        names = set(z.namelist())
    assert {"article.md", "article.html", "article.docx", "article.pdf", "article.wp.html", "article.json"} <= names


def test_copy_article_pastes_headings_pictures_and_captions(editor):
    w = editor
    w.act("Copy article", "Article copied")
    page = w.page
    # Wait for the clipboard to hold the article (the copy finishes after the server answers).
    page.wait_for_function("""async () => {
        const items = await navigator.clipboard.read();
        return items.length && items[0].types.includes("text/html");
    }""", timeout=30_000)
    plain = page.evaluate("""async () => {
        const [item] = await navigator.clipboard.read();
        return await (await item.getType("text/plain")).text();
    }""")
    assert TITLE in plain and CAPTIONS[1] in plain and "\n\n" in plain  # plain text too, a block a paragraph
    page.goto("about:blank")
    page.set_content('<div id="editor" contenteditable="true" style="min-height:200px"></div>')
    page.click("#editor")
    page.keyboard.press("Control+V")
    page.wait_for_function("document.querySelectorAll('#editor img').length >= 2", timeout=15_000)
    pasted = lxml.html.fragment_fromstring(page.inner_html("#editor"), create_parent="div")

    def texts(xpath: str) -> list[str]:
        return [" ".join(e.text_content().split()) for e in pasted.xpath(xpath)]

    assert texts("//h1") == [TITLE]
    assert texts("//h2") == HEADINGS
    assert texts("//figcaption") == CAPTIONS
    assert [p for p in texts("//p") if p in PARAGRAPHS] == PARAGRAPHS
    imgs = pasted.xpath("//img")
    assert [i.get("alt") for i in imgs] == ["Espresso cup", "A tabby cat"]
    assert all(i.get("src", "").startswith("data:image/jpeg;base64,") for i in imgs)
    assert not pasted.xpath("//a | //script | //b")  # the "<b>" and "[see](http://x)" are text
    page.screenshot(path=str(screenshot_dir() / "pasted-article.png"), full_page=True)
    # In document order: heading, paragraph, picture, its caption, ...
    order = [e.tag for e in pasted.iter() if e.tag in ("h1", "h2", "img", "figcaption")]
    assert order == ["h1", "h2", "img", "figcaption", "h2", "img", "figcaption"]
