"""Soak (issue 8): three writers compose and edit in one editor for two minutes; afterwards
every one of them can still compose. Slow, and run in CI."""
import time
from pathlib import Path

import pytest

from composer.app_testing import CHROMIUM, EditorPage, app_server, chromium, screenshot_dir

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="needs Debian's chromium (apt-get install chromium)")]

SOAK_S = 120
SHORT = 100
TIMEOUT_S = 600  # three writers share one model on a shared CPU: the last in the queue waits for two


def test_three_writers_for_two_minutes_then_all_still_compose(tmp_path):
    with app_server(["--data", str(tmp_path / "data")], env={"TMPDIR": str(tmp_path)}) as server, chromium() as browser:
        writers = [EditorPage(browser.new_context(viewport={"width": 1300, "height": 1100}).new_page(), server.url)
                   for _ in range(3)]
        for k, w in enumerate(writers):
            w.fill_request(f"Soak {k}: a walk by the river", length=SHORT)
            w.start_compose(TIMEOUT_S)
        end = time.time() + SOAK_S
        rounds = [0, 0, 0]
        # Round robin: whoever has finished edits (undo, redo, export) and composes again.
        while time.time() < end:
            for k, w in enumerate(writers):
                if not w.finished():
                    continue
                assert "⚠" not in w.status() and not w.failed(), f"writer {k}: {w.status()!r}\n{server.log[-3000:]}"
                w.act("Undo", "Undone", "Nothing to undo", timeout_s=TIMEOUT_S)
                w.act("Redo", "Redone", "Nothing to redo", timeout_s=TIMEOUT_S)
                w.act("Export", "Exported", timeout_s=TIMEOUT_S)
                w.fill_request(f"Soak {k}, round {rounds[k] + 1}", length=SHORT)
                w.start_compose(TIMEOUT_S)
                rounds[k] += 1
            time.sleep(0.5)
        for w in writers:
            w.wait_done(TIMEOUT_S)
        for k, w in enumerate(writers):
            status = w.compose(f"After the soak, writer {k}", length=SHORT, timeout_s=TIMEOUT_S)
            w.page.screenshot(path=str(screenshot_dir() / f"soak-writer-{k}.png"))
            assert "Done" in status, f"writer {k}: {status!r}\n{server.log[-3000:]}"
        assert "Traceback" not in server.log, server.log[-5000:]
