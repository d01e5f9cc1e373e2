"""The editor speaks the writer's language, and a writer whose job must wait is told how long:
a real `python app.py` (embedded model) and a real chromium with a Chinese browser."""
import re
from pathlib import Path

import pytest

from composer.app_testing import CHROMIUM, ROOT, EditorPage, screenshot_dir

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="needs Debian's chromium (apt-get install chromium)")]

PHOTOS = [str(ROOT / "assets/library/cat.jpg"), str(ROOT / "assets/library/coffee.jpg")]


def editor(browser, server, locale: str) -> tuple[EditorPage, list[str]]:
    context = browser.new_context(viewport={"width": 1300, "height": 1400}, locale=locale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return EditorPage(page, server.url, language=locale[:2]), errors


def english_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z]{3,}", text) if w.lower() not in {"article", "json", "zip", "jpg"}]


def ours(status: str) -> str:
    """The editor's own line of the status, without Gradio's progress timer above it."""
    return next((line for line in reversed(status.splitlines()) if line.strip()), "")


def test_a_chinese_browser_gets_chinese_status_lines_and_a_waiting_writer_an_estimate(server, browser):
    zh, zh_errors = editor(browser, server, "zh-CN")
    en, en_errors = editor(browser, server, "en-US")
    # The first writer (a Chinese browser) composes: every status line on the way is Chinese.
    zh.fill_request("A morning at the café", length=120, pictures="2", photos=PHOTOS)
    assert zh.page.get_by_role("button", name="撰写").count() == 1  # the labels were Chinese already
    seen: list[str] = []
    zh.page.get_by_role("button", name="撰写").click()
    zh.wait_until(lambda: seen.append(zh.status()) or "完成" in seen[-1] or "⚠" in seen[-1], timeout_s=420)
    assert "完成：" in seen[-1], seen[-1]
    # Ours is the last line; above it may be Gradio's own timer ("processing | 0.3s").
    lines = [line for line in dict.fromkeys(ours(text) for text in seen) if line]
    assert len(lines) >= 3 and all(not english_words(line) for line in lines), lines
    zh.wait_until(lambda: zh.page.locator("#article .article-title").count() == 1)
    assert "已放在第" in zh.page.locator("#photo-status").inner_text()
    zh.page.screenshot(path=str(screenshot_dir() / "editor-chinese.png"), full_page=True)

    # The English writer composes; while that runs, the Chinese writer's Shorten must wait, and
    # is told for about how long (from how long the first compose took), in Chinese.
    en.fill_request("A morning at the café", length=120, pictures="0")
    en.page.get_by_role("button", name="Compose").click()
    en.page.wait_for_selector("#status:has-text('Writing')", timeout=120_000)
    before = zh.status()
    zh.page.get_by_role("button", name="缩写").first.click()
    status = zh.wait_for_status("正在等待", "开始", before=before, timeout_s=30)
    assert re.search(r"正在等待另一位作者的文章——大约 \d+ (秒|分钟)。", status), status
    zh.page.screenshot(path=str(screenshot_dir() / "editor-chinese-waiting.png"), full_page=True)
    # ...and once its turn comes, the edit is shown beside the old text, in Chinese too.
    status = zh.wait_for_status("采用", "⚠", before=status, timeout_s=420)
    assert not english_words(ours(status)), status
    en.wait_done(timeout_s=420)
    assert "Done" in en.status()  # the English writer still reads English
    assert zh_errors == [] and en_errors == [], (zh_errors, en_errors)
