"""Edits in a real browser against a real `python app.py`: Delete on an article whose figures
offer other pictures, and one article open in two tabs (two writers)."""
import re
from pathlib import Path

import pytest

from composer.app_testing import CHROMIUM, ROOT, EditorPage, screenshot_dir
from composer.article import Article, Candidate, Figure, Paragraph
from composer.editor_session import with_names
from composer.export import write_bundle
from composer.images import load_image

LIB = ROOT / "assets/library"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="needs Debian's chromium (apt-get install chromium)")]

PARAGRAPHS = [f"Paragraph {n} of the café story: the owner opens at seven and the cat sleeps." for n in range(1, 12)]


def bundle(tmp_path, paragraphs=PARAGRAPHS) -> Path:
    """An exported .zip with two figures, each offering other pictures as thumbnails."""
    refs = [load_image(LIB / name).ref for name in ("cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg")]
    cands = tuple(Candidate(r, 0.3 - i / 100) for i, r in enumerate(refs))
    blocks: list = [Paragraph(t) for t in paragraphs]
    blocks.insert(2, Figure(refs[0], "A cat on the window seat", "a cat", "library", cands))
    blocks.insert(5, Figure(refs[1], "The first espresso", "coffee", "library", cands[1:] + cands[:1]))
    # Named as the editor exports it.
    article = with_names(Article("The café", tuple(blocks), {"request": {"title": "The café"}}))
    paths = write_bundle(article, tmp_path / "out")
    return paths["zip"]


def editor(browser, server) -> tuple[EditorPage, list[str]]:
    context = browser.new_context(viewport={"width": 1300, "height": 1400})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return EditorPage(page, server.url), errors


def shown(w: EditorPage) -> list[str]:
    return w.page.evaluate("""() => [...document.querySelectorAll('#article .block-text textarea')]
                                    .map(t => t.value)""")


def settled(w: EditorPage) -> bool:
    """No part of the article pane is still loading."""
    return w.page.locator("#article .pending, #article .generating, #article-pane .eta-bar").count() == 0


def open_bundle(w: EditorPage, path: Path) -> None:
    w.open_file(path)
    w.page.wait_for_selector("#status:has-text('Opened')", timeout=60_000)
    w.wait_until(lambda: len(shown(w)) == len(PARAGRAPHS))


def add_photos(w: EditorPage) -> None:
    before = w.status()
    w.page.locator("#photos input[type=file]").set_input_files([str(LIB / "photographer.jpg"),
                                                                 str(LIB / "greek-coins.jpg")])
    w.wait_for_status("photos ready", before=before)


def delete(w: EditorPage, n: int) -> None:
    """Delete the n-th paragraph; the caller waits for what the article then shows (the status
    says "Paragraph deleted." each time)."""
    w.page.get_by_role("button", name="Delete", exact=True).nth(n).click()


def test_delete_with_candidate_thumbnails_shows_the_article_as_it_is(server, browser, tmp_path):
    w, errors = editor(browser, server)
    open_bundle(w, bundle(tmp_path))
    add_photos(w)  # every figure offers them as thumbnails
    w.wait_until(lambda: w.page.locator("#article .candidates").count() == 2)
    delete(w, 1)  # the paragraph just before the first figure
    expected = PARAGRAPHS[:1] + PARAGRAPHS[2:]
    w.wait_until(lambda: shown(w) == expected and settled(w), timeout_s=20)
    assert w.pictures() == 2 and w.page.locator("#article .candidates").count() == 2
    w.page.screenshot(path=str(screenshot_dir() / "delete-with-thumbnails.png"), full_page=True)
    # ...and the last paragraph, twice: what is shown is what is left.
    delete(w, len(expected) - 1)
    expected = expected[:-1]
    w.wait_until(lambda: shown(w) == expected and settled(w), timeout_s=20)
    delete(w, len(expected) - 1)
    expected = expected[:-1]
    w.wait_until(lambda: shown(w) == expected and settled(w), timeout_s=20)
    w.act("Undo", "Undone")
    w.wait_until(lambda: shown(w) == PARAGRAPHS[:1] + PARAGRAPHS[2:-1] and settled(w), timeout_s=20)
    assert w.pictures() == 2
    assert errors == [], errors
    w.page.context.close()


def test_one_article_in_two_tabs_keeps_both_writers_edits(server, browser, tmp_path):
    first, errors = editor(browser, server)
    open_bundle(first, bundle(tmp_path))
    # The second tab of the same browser shows the same article.
    second = EditorPage(first.page.context.new_page(), server.url)
    second.page.on("pageerror", lambda exc: errors.append(str(exc)))
    second.wait_until(lambda: shown(second) == PARAGRAPHS, timeout_s=60)
    before = first.status()
    first.edit_text(0, "Edited in the first tab.")
    first.wait_for_status("Text saved", before=before)
    # The second tab still shows the old version; its writer edits another paragraph.
    assert shown(second)[0] == PARAGRAPHS[0]
    before = second.status()
    second.edit_text(3, "Edited in the second tab.")
    second.wait_for_status("Text saved", "⚠", before=before)
    both = ["Edited in the first tab.", *PARAGRAPHS[1:3], "Edited in the second tab.", *PARAGRAPHS[4:]]
    second.wait_until(lambda: shown(second) == both, timeout_s=20)
    # The second tab, still showing the old first paragraph there a moment ago, edits it: refused
    # with a message, and the tab shows the first tab's text.
    before = first.status()
    first.edit_text(5, "The first tab again.")
    first.wait_for_status("Text saved", "⚠", before=before)
    before = second.status()
    second.edit_text(5, "The second tab's version of it.")
    status = second.wait_for_status("another tab", before=before)
    assert status.lstrip().startswith("⚠"), status
    second.wait_until(lambda: shown(second)[5] == "The first tab again.", timeout_s=20)
    second.page.screenshot(path=str(screenshot_dir() / "two-tabs-refused.png"), full_page=True)
    # A reload shows every edit that was saved, and the history holds each of them.
    first.page.reload()
    first.page.wait_for_selector("#status:has-text('back')", timeout=60_000)
    everything = [*both[:5], "The first tab again.", *both[6:]]
    first.wait_until(lambda: shown(first) == everything, timeout_s=30)
    for undone in (both, ["Edited in the first tab.", *PARAGRAPHS[1:]], PARAGRAPHS):
        first.act("Undo", "Undone")
        first.wait_until(lambda undone=undone: shown(first) == undone, timeout_s=20)
    assert errors == [], errors
    first.page.context.close()


def captions_of(w: EditorPage, n: int) -> str:
    return w.page.locator("#article .candidates").nth(n).inner_text()


def test_each_figure_offers_the_writers_photos_by_name_and_search_keeps_the_caption(server, browser, tmp_path):
    w, errors = editor(browser, server)
    open_bundle(w, bundle(tmp_path))
    add_photos(w)
    w.wait_until(lambda: "photographer.jpg" in captions_of(w, 0), timeout_s=20)
    labels = captions_of(w, 0)
    assert "greek-coins.jpg" in labels, labels
    assert not re.search(r"[0-9a-f]{12}", labels), f"a picture is named by its hash: {labels!r}"
    # Swap the first figure to one of the writer's photos: it leaves the list, the cat comes in.
    before = w.status()
    w.page.locator("#article .candidates").first.locator("button, .thumbnail-item").first.click()
    w.wait_for_status("Picture swapped", "⚠", before=before)
    try:
        w.wait_until(lambda: "photographer.jpg" not in captions_of(w, 0) and "cat.jpg" in captions_of(w, 0)
                     and settled(w), timeout_s=20)
    except TimeoutError:
        raise AssertionError(captions_of(w, 0)) from None
    w.page.screenshot(path=str(screenshot_dir() / "own-photos-gallery.png"), full_page=True)
    # The library header counts the pictures added to it.
    w.page.locator("#library").get_by_text("Picture library").click()
    w.page.locator("#library input[type=file]").set_input_files([str(LIB / "rocket.jpg")])
    w.wait_until(lambda: "1 picture" in w.page.locator("#library-info").inner_text(), timeout_s=120)
    w.wait_until(lambda: "(1 picture)" in w.page.locator("#header").inner_text(), timeout_s=20)
    # Search library with a caption typed and not yet saved: the caption stays the writer's.
    caption = w.page.locator("#article .caption textarea").nth(1)
    caption.fill("My own caption for the espresso")
    w.page.get_by_placeholder("Search the library by other words").nth(1).fill("a rocket launch")
    before = w.status()
    w.page.get_by_role("button", name="Search library", exact=True).nth(1).click()
    status = w.wait_for_status("Picture found", "⚠", "Error", before=before)
    assert "found" in status, f"{status}\n{server.log[-3000:]}"
    w.wait_until(lambda: w.page.locator("#article .caption textarea").nth(1).input_value()
                 == "My own caption for the espresso" and settled(w), timeout_s=20)
    assert errors == [], errors
    w.page.context.close()


def test_a_model_edit_is_shown_beside_the_old_text_until_accepted(server, browser, tmp_path):
    """Issue 18, case 10: Rewrite shows the new text under the old with Accept / Try again /
    Discard; nothing changes until Accept, and Undo covers an accepted edit."""
    w, errors = editor(browser, server)
    open_bundle(w, bundle(tmp_path))
    before = w.status()
    w.page.get_by_role("button", name="Rewrite", exact=True).first.click()
    status = w.wait_for_status("Accept", "⚠", before=before, timeout_s=300)
    assert "Accept" in status, status
    w.wait_until(lambda: w.page.locator("#article .proposal-text").count() == 1 and settled(w))
    assert shown(w) == PARAGRAPHS  # nothing replaced yet
    w.page.screenshot(path=str(screenshot_dir() / "rewrite-preview.png"), full_page=True)
    w.act("Discard", "Discarded")
    w.wait_until(lambda: w.page.locator("#article .proposal-text").count() == 0 and shown(w) == PARAGRAPHS)
    before = w.status()
    w.page.get_by_role("button", name="Rewrite", exact=True).first.click()
    w.wait_for_status("Accept", before=before, timeout_s=300)
    w.wait_until(lambda: w.page.locator("#article .proposal-text").count() == 1 and settled(w))
    new = w.page.locator("#article .proposal-text p").first.inner_text()
    w.act("Accept", "Rewritten")
    w.wait_until(lambda: shown(w)[0] == new and w.page.locator("#article .proposal-text").count() == 0)
    w.act("Undo", "Undone")
    w.wait_until(lambda: shown(w) == PARAGRAPHS)
    assert errors == [], errors
    w.page.context.close()


def test_your_articles_come_back_in_a_fresh_tab_and_never_show_in_another_browser(server, browser, tmp_path):
    """Issue 18, case 11: a writer's articles are listed (open, duplicate, delete with undo)."""
    w, errors = editor(browser, server)
    open_bundle(w, bundle(tmp_path))
    w.click("New article")
    w.wait_for_status("A new article")
    w.page.locator("#your-articles").get_by_text("Your articles").click()
    entries = w.page.locator("#articles-list label")
    w.wait_until(lambda: entries.count() == 1 and "The café" in entries.first.inner_text())
    assert "2 pictures" in entries.first.inner_text()
    entries.first.click()
    w.act("Duplicate", "Duplicated")
    w.wait_until(lambda: entries.count() == 2 and len(shown(w)) == len(PARAGRAPHS))
    w.page.screenshot(path=str(screenshot_dir() / "your-articles.png"), full_page=True)
    # Delete the copy (shown now), then bring it back.
    entries.filter(has_text="(copy)").click()
    w.act("Delete article", "Deleted from your articles")
    w.wait_until(lambda: entries.count() == 1 and len(shown(w)) == 0)
    w.act("Undo delete", "Brought back")
    w.wait_until(lambda: entries.count() == 2)
    entries.filter(has_text="(copy)").click()
    w.page.locator("#your-articles").get_by_role("button", name="Open", exact=True).click()
    w.wait_for_status("Opened. Keep editing.")
    w.wait_until(lambda: shown(w) == PARAGRAPHS)
    # Another browser (another writer) sees none of them.
    other, _ = editor(browser, server)
    other.page.locator("#your-articles").get_by_text("Your articles").click()
    other.page.wait_for_timeout(1500)
    assert other.page.locator("#articles-list label").count() == 0
    assert errors == [], errors
    w.page.context.close()
    other.page.context.close()
