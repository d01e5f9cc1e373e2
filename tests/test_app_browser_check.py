"""The check in the editor, in a real browser against a real `python app.py`: a sentence the
writer types that the notes do not support is flagged as soon as the box is left, and each
supported sentence shows the passage it rests on."""
from pathlib import Path

import pytest

from composer.app_testing import CHROMIUM, EditorPage, screenshot_dir
from composer.article import Article, Paragraph
from composer.check import annotate
from composer.export import write_bundle

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="needs Debian's chromium (apt-get install chromium)")]

MATERIALS = ("Ladybird beetles eat aphids. A female lays clusters of yellow eggs on the undersides of leaves. "
             "In autumn the adults gather in sheltered places, where they spend the winter.")


def test_a_typed_invention_is_flagged_at_once_and_sources_show_on_a_click(server, browser, tmp_path):
    article = annotate(Article("Ladybirds", (
        Paragraph("Ladybird beetles eat aphids."),
        Paragraph("In autumn the adults gather in sheltered places, where they spend the winter."),
    ), {"request": {"title": "Ladybirds", "materials": MATERIALS, "language": "en"}}))
    zip_path = write_bundle(article, tmp_path / "out")["zip"]
    context = browser.new_context(viewport={"width": 1300, "height": 1200})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    w = EditorPage(page, server.url)
    w.open_file(zip_path)
    page.wait_for_selector("#status:has-text('Opened')", timeout=60_000)
    assert page.locator("#article .claims").count() == 0

    page.locator("#article details.sources summary").first.click()
    source = page.locator("#article details.sources blockquote").first
    assert source.inner_text() == "Ladybird beetles eat aphids."

    w.edit_text(0, "Ladybird beetles eat aphids. Their long wings make them deadly to predators.")
    page.wait_for_selector("#article .claims", timeout=30_000)  # no other action needed to see it
    flagged = page.locator("#article .claims").first.inner_text()
    assert "long wings make them deadly to predators" in flagged
    page.screenshot(path=str(screenshot_dir() / "check-typed-invention.png"), full_page=True)

    # Export with the sources ticked: the page lists the writer's passages the article rests on.
    page.locator("#with-sources input[type=checkbox]").check()
    w.act("Export", "Exported")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download .html").click()
    dl.value.save_as(tmp_path / "article.html")
    exported = (tmp_path / "article.html").read_text(encoding="utf-8")
    assert "<h2>Sources</h2>" in exported and "<sup>[1]</sup>" in exported
    assert "<li>“In autumn the adults gather in sheltered places, where they spend the winter.”</li>" in exported
    assert errors == [], errors
    context.close()
