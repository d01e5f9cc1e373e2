"""Helpers for checks that drive the browser editor as a writer would: a real `python app.py`
server in a subprocess and Debian's chromium through Playwright. Shared by the browser tests
and anything else (a benchmark, a soak run) that needs a live editor."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from composer.interface_text import LABELS_ZH

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """A running `python app.py`; `log` holds everything it printed so far."""

    def __init__(self, proc: subprocess.Popen, url: str):
        self.proc, self.url = proc, url
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # started with stdout=PIPE
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self._lines)


@contextmanager
def app_server(args: Sequence[str] = (), env: dict[str, str] | None = None, start_timeout: float = 240,
               cwd: Path = ROOT) -> Iterator[AppServer]:
    """Start app.py on a free port, wait until it answers, stop it afterwards."""
    port = free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=cwd, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = AppServer(proc, f"http://127.0.0.1:{port}/")
    try:
        deadline = time.time() + start_timeout
        while True:
            if proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(f"app.py exited with {proc.returncode}: {server.log[-3000:]}")
            try:
                urllib.request.urlopen(server.url, timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (e.g. 401 behind --auth)
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(
                        f"app.py did not start within {start_timeout:.0f} s: {server.log[-3000:]}") from None
                time.sleep(0.5)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_dir() -> Path:
    """Where browser checks save pictures of what the writer saw (COMPOSER_SCREENSHOTS or a temp folder)."""
    default = Path(os.environ.get("TMPDIR", "/tmp")) / "composer-screenshots"
    folder = Path(os.environ.get("COMPOSER_SCREENSHOTS") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class EditorPage:
    """One writer's tab, driven by what the writer sees (labels, buttons, the status line)."""

    STATUS = "#status"
    ARTICLE = "#article"

    def __init__(self, page, url: str, language: str = "en"):
        self.page = page
        self.language = language  # the browser's: the editor's labels are in it
        self.page.goto(url)
        self.page.wait_for_selector(self.STATUS)

    def status(self) -> str:
        return self.page.locator(self.STATUS).inner_text()

    def label(self, english: str) -> str:
        """A control's label as this page shows it."""
        return LABELS_ZH.get(english, english) if self.language == "zh" else english

    def fill_request(self, title: str, outline: str = "Opening\nThe espresso\nThe café cat",
                     materials: str = "The café opens at seven. A tabby cat sleeps on the window seat.",
                     length: int | None = None, pictures: str | None = None, photos: Sequence[str] = ()) -> None:
        page = self.page
        page.get_by_label(self.label("Title"), exact=True).fill(title)
        page.get_by_label(self.label("Outline (one point per line)")).fill(outline)
        page.get_by_label(self.label("Materials (facts, notes)")).fill(materials)
        if length is not None:
            box = page.locator("#length input[type=number]")
            box.fill(str(length))
            box.press("Enter")
        if pictures is not None:
            page.get_by_label(self.label("Pictures"), exact=True).click()
            page.get_by_role("option", name=pictures, exact=True).click()
        if photos:
            page.locator("#photos input[type=file]").set_input_files(list(photos))
            page.wait_for_selector(f"#photos:has-text('{Path(photos[-1]).stem}')")

    def start_compose(self, timeout_s: float = 300) -> None:
        """Press Compose and wait until it has begun (the status leaves the previous result)."""
        before = self.status()
        self.page.get_by_role("button", name=self.label("Compose"), exact=True).click()
        if self.finished():
            # Wait for the previous result's words to go: Gradio's pending timer ("0.1s") is
            # prefixed to the same words first, which is not yet the new job.
            deadline = time.time() + timeout_s
            while before.strip() in self.status() and time.time() < deadline:
                self.page.wait_for_timeout(100)

    def finished(self) -> bool:
        """The last compose or edit has ended: done, stopped, or a visible error (ours start
        with ⚠; Gradio marks a handler that raised with "Error" over the status line)."""
        text = self.status()
        return any(word in text for word in ("Done", "⚠", "Stopped", "完成", "已停止")) or self.failed()

    def failed(self) -> bool:
        return self.status().lstrip().startswith("Error")

    def wait_done(self, timeout_s: float = 300) -> str:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.finished():
                return self.status()
            self.page.wait_for_timeout(250)
        raise TimeoutError(f"no result within {timeout_s:.0f} s; the status says {self.status()!r}")

    def compose(self, title: str, timeout_s: float = 300, **request) -> str:
        self.fill_request(title, **request)
        self.start_compose(timeout_s)
        status = self.wait_done(timeout_s)
        if "Done" in status or "完成" in status:  # the article view redraws just after the status says so
            self.wait_until(lambda: self.page.locator(f"{self.ARTICLE} .article-title").count() == 1
                            and self.page.locator(f"{self.ARTICLE} .article-title").inner_text() == title.strip())
        return status

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def article_text(self) -> str:
        """The article as the writer reads it: title, then every block's text and caption."""
        return self.page.evaluate("""() => {
            const root = document.querySelector('#article');
            const title = root.querySelector('.article-title');
            const parts = [title ? title.innerText : ''];
            root.querySelectorAll('textarea').forEach(t => parts.push(t.value));
            return parts.join('\\n');
        }""")

    def pictures(self) -> int:
        return self.page.locator(f"{self.ARTICLE} .figure-image img").count()

    def edit_text(self, block: int, text: str) -> None:
        """Type into block `block`'s text (0 = the first paragraph or heading) and leave it."""
        box = self.page.locator(f"{self.ARTICLE} .block-text textarea").nth(block)
        box.fill(text)
        box.press("Tab")

    def open_file(self, path: str | Path) -> None:
        """Reopen an exported article with the Open button (through the browser's file chooser)."""
        with self.page.expect_file_chooser() as chooser:
            self.page.get_by_role("button", name="Open article.json or .zip").click()
        chooser.value.set_files(str(path))

    def click_first(self, button: str) -> str:
        """Click the first button of that name in the article; returns the status before."""
        before = self.status()
        self.page.get_by_role("button", name=button, exact=True).first.click()
        return before

    def act(self, button: str, *expect: str, timeout_s: float = 60) -> str:
        """Click a button and wait until the status line says one of `expect` (a new status:
        each action's message differs from the one before it)."""
        before = self.status()
        self.click(button)
        return self.wait_for_status(*expect, before=before, timeout_s=timeout_s)

    def wait_for_status(self, *expect: str, before: str | None = None, timeout_s: float = 60) -> str:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            text = self.status()
            if text != before and any(e in text for e in expect):
                return text
            self.page.wait_for_timeout(50)
        raise TimeoutError(f"the status says {self.status()!r}, not any of {expect}")

    def wait_until(self, condition, timeout_s: float = 30) -> None:
        deadline = time.time() + timeout_s
        while not condition():
            if time.time() > deadline:
                raise TimeoutError(f"the page did not settle; the status says {self.status()!r}")
            self.page.wait_for_timeout(100)
