"""The editor as a writer uses it: a real server (app.py with the embedded model) and a real
browser (Debian's chromium driven by Playwright)."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PHOTOS = [str(ROOT / "assets/library/cat.jpg"), str(ROOT / "assets/library/coffee.jpg")]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited: {proc.stdout.read()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("app.py did not start within 180 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def compose(page, title, photos=PHOTOS):
    page.get_by_label("Title").fill(title)
    page.get_by_label("Outline (one point per line)").fill("Opening\nThe espresso\nThe café cat")
    page.get_by_label("Materials (facts, notes)").fill("The café opens at seven. A tabby cat sleeps on the window seat.")
    page.get_by_label("Pictures", exact=True).click()
    page.get_by_role("option", name="2", exact=True).click()
    if photos:
        page.locator("input[type=file]").set_input_files(photos)
        page.wait_for_selector("#photos:has-text('coffee')")
    page.get_by_role("button", name="Compose").click()
    page.wait_for_selector("#status:has-text('Done')", timeout=300_000)


def test_compose_edit_undo_export(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    page.goto(server)
    compose(page, "A morning at the café")
    preview = page.locator("#preview")
    assert preview.locator("figure img").count() == 2
    assert preview.locator("h1").inner_text() == "A morning at the café"
    original = preview.inner_text()

    # Shorten the first paragraph: the text streams into the status line, then the preview changes.
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_selector("#status:has-text('Edited')", timeout=300_000)
    edited = preview.inner_text()
    assert edited != original
    page.get_by_role("button", name="Undo").click()
    page.wait_for_selector("#status:has-text('Undone')")
    page.wait_for_function("document.querySelector('#preview').innerText === %r" % original)
    page.get_by_role("button", name="Redo").click()
    page.wait_for_selector("#status:has-text('Redone')")
    page.wait_for_function("document.querySelector('#preview').innerText === %r" % edited)

    # Remove a picture: pick the first picture block in the block list.
    page.get_by_label("Block", exact=True).click()
    page.get_by_role("option", name="[picture]").first.click()
    page.get_by_role("button", name="Remove picture").click()
    page.wait_for_selector("#status:has-text('Edited')")
    page.wait_for_function("document.querySelectorAll('#preview figure img').length === 1")

    page.get_by_role("button", name="Export").click()
    page.wait_for_selector("#status:has-text('Exported')")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download .zip").click()
    path = tmp_path / "article.zip"
    dl.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert {"article.md", "article.html", "article.json"} <= set(names)
        assert sum(n.startswith("images/") for n in names) == 1
    page.close()


def test_hostile_title_is_text_and_sessions_are_separate(server, browser):
    first = browser.new_page()
    second = browser.new_page()
    first.goto(server)
    second.goto(server)
    hostile = '<img src=x onerror="document.title=\'pwned\'">Café'
    compose(first, hostile, photos=[])
    assert first.title() != "pwned"
    assert first.locator("#preview img[onerror]").count() == 0
    assert hostile in first.locator("#preview h1").inner_text()
    # The other writer's page has no article and no history to undo.
    assert second.locator("#preview").inner_text().strip() == ""
    second.get_by_role("button", name="Undo").click()
    second.wait_for_selector("#status:has-text('Undone')")
    assert second.locator("#preview").inner_text().strip() == ""
    first.close()
    second.close()


def test_bad_photo_gets_a_clear_message(server, browser, tmp_path):
    bad = tmp_path / "holiday.jpg"
    bad.write_text("not really a photo")
    page = browser.new_page()
    page.goto(server)
    page.get_by_label("Title").fill("Holiday")
    page.locator("input[type=file]").set_input_files([str(bad)])
    page.wait_for_selector("#photos:has-text('holiday')")
    page.get_by_role("button", name="Compose").click()
    page.wait_for_selector("#status:has-text('not an image')", timeout=60_000)
    assert "holiday.jpg" in page.locator("#status").inner_text()
    page.close()
