"""Exported sources: each paragraph numbers the writer's passages it rests on, and a Sources list
quotes each once; the writer's text in it is text in every format."""
import html
import re

from composer.article import Article, Paragraph
from composer.check import annotate
from composer.export import write_bundle

HOSTILE = "Chelsea <b>the</b> cat sleeps [here](http://e.example) on the window seat."
REQUEST = {"title": "A morning at the café", "outline": ["The cat"], "language": "en",
           "materials": f"The café opens at seven. {HOSTILE} She has a water bowl by the door."}


def article() -> Article:
    return annotate(Article("A morning at the café", (
        Paragraph("The cat", kind="heading", level=2),
        Paragraph("Chelsea the cat sleeps on the window seat. She has a water bowl by the door."),
        Paragraph("The café opens at seven."),
    ), {"request": REQUEST}))


def test_markers_and_the_sources_list_in_markdown_and_html(tmp_path):
    paths = write_bundle(article(), tmp_path / "out", sources=True)
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "sleeps on the window seat. She has a water bowl by the door. \\[1, 2\\]" in md
    assert "The café opens at seven. \\[3\\]" in md
    assert md.count("## Sources") == 1 and "The cat \\[" not in md  # a heading cites nothing
    # The writer's passage is text: a Markdown reader shows the brackets and the tag as written.
    assert "\\[1\\] “Chelsea &lt;b\\>the&lt;/b\\> cat sleeps \\[here\\](http://e.example)" in md
    assert "<b>" not in md
    page = paths["html"].read_text(encoding="utf-8")
    assert "<sup>[1, 2]</sup></p>" in page and "<sup>[3]</sup></p>" in page
    listed = re.findall(r"<li>(.*?)</li>", page.split("<h2>Sources</h2>")[1])
    assert [html.unescape(x) for x in listed] == [f"“{HOSTILE}”", "“She has a water bowl by the door.”",
                                                  "“The café opens at seven.”"]
    section = page.split("<h2>Sources</h2>")[1].split("</section>")[0]
    assert "&lt;b&gt;the&lt;/b&gt;" in section and "<a" not in section


def test_without_sources_nothing_is_added(tmp_path):
    paths = write_bundle(article(), tmp_path / "out")
    assert "Sources" not in paths["markdown"].read_text(encoding="utf-8")
    assert "<sup>" not in paths["html"].read_text(encoding="utf-8")


def test_markers_and_the_sources_list_in_word_and_wordpress(tmp_path):
    """The same numbers and list in the formats made from the page's parts (issue 21)."""
    import docx

    from composer.export.testing import parse_wp_blocks

    paths = write_bundle(article(), tmp_path / "out", sources=True, formats=("docx", "wp"))
    paras = [(p.style.name, p.text) for p in docx.Document(str(paths["docx"])).paragraphs]
    assert ("Normal", "The café opens at seven. [3]") in paras
    sources = paras[paras.index(("Heading 1", "Sources")) + 1:]
    assert sources == [("List Number", f"“{HOSTILE}”"), ("List Number", "“She has a water bowl by the door.”"),
                       ("List Number", "“The café opens at seven.”")]
    blocks, outside = parse_wp_blocks(paths["wp"].read_text(encoding="utf-8"))
    assert outside == "" and [b.name for b in blocks][-2:] == ["core/heading", "core/list"]
    assert "<sup>[3]</sup></p>" in blocks[-3].inner_html
    items = [item.inner_html for item in blocks[-1].inner_blocks]
    assert len(items) == 3 and "&lt;b&gt;the&lt;/b&gt;" in items[0] and "<a" not in items[0]
