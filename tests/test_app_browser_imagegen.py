"""Generate / Regenerate in a real browser against a real editor (app.py, embedded model) and
the loopback image engine: a picture is generated while another writer composes (it waits for
no model job), a generated picture shows its badge, and Stop ends a generation."""
import time
from pathlib import Path

import pytest

from composer.app_testing import CHROMIUM, EditorPage, app_server, screenshot_dir
from composer.imagegen.testing import LoopbackImageServer

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="needs Debian's chromium (apt-get install chromium)")]

TIMEOUT_S = 420
DELAY_S = 2.0  # each picture: long enough to press Stop during one


@pytest.fixture(scope="module")
def engine():
    with LoopbackImageServer(delay_s=DELAY_S) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    data = tmp_path_factory.mktemp("app-data")
    with app_server(["--data", str(data), "--imagegen", f"openai-images:{engine.url}?size=256x192"]) as srv:
        yield srv


def writer(browser, server) -> EditorPage:
    context = browser.new_context(viewport={"width": 1300, "height": 1400})
    return EditorPage(context.new_page(), server.url)


def picture_src(w: EditorPage) -> str:
    return w.page.locator("#article .figure-image img").first.get_attribute("src") or ""


def test_generate_while_another_writer_composes_and_stop(server, browser, engine):
    a = writer(browser, server)
    status = a.compose("Tea at five", length=100, pictures="1", timeout_s=TIMEOUT_S)
    assert "Done" in status and "1 picture" in status, f"{status!r}\n{server.log[-3000:]}"
    assert a.pictures() == 1
    assert a.page.locator("#article .generated-badge").count() == 1
    assert "Generated" in a.page.locator("#article .generated-badge").first.inner_text()
    prompt = a.page.locator("#article .prompt textarea").first.input_value()
    assert "editorial illustration" in prompt
    first_src, served = picture_src(a), len(engine.bodies)

    b = writer(browser, server)
    b.fill_request("A long morning at the café", length=300)
    b.start_compose(TIMEOUT_S)

    # A regenerates with an edited prompt while B's compose holds the model.
    box = a.page.locator("#article .prompt textarea").first
    box.fill("a teapot on a windowsill at dusk")
    before = a.status()
    a.click_first("Regenerate")
    done = a.wait_for_status("Picture generated", "⚠", before=before, timeout_s=60)
    composing = not b.finished()
    assert "Picture generated" in done, f"{done!r}\n{server.log[-3000:]}"
    assert composing, "the other writer's compose ended before the picture came: nothing was shown"
    a.wait_until(lambda: picture_src(a) != first_src)
    assert engine.bodies[-1][1]["prompt"] == "a teapot on a windowsill at dusk"
    assert engine.bodies[-1][1]["seed"] != engine.bodies[served - 1][1]["seed"]
    a.page.screenshot(path=str(screenshot_dir() / "imagegen-regenerated.png"), full_page=True)

    # Stop during a generation: the article stays as it was.
    shown = picture_src(a)
    before = a.status()
    a.click_first("Regenerate")
    a.wait_for_status("Generating a picture", before=before, timeout_s=30)
    time.sleep(DELAY_S / 4)
    a.click("Stop")
    stopped = a.wait_for_status("Stopped", before="Generating a picture…", timeout_s=30)
    assert "Stopped" in stopped
    time.sleep(DELAY_S + 0.5)  # the engine's late answer is dropped
    assert picture_src(a) == shown and "Stopped" in a.status()

    assert "Done" in b.wait_done(TIMEOUT_S), server.log[-3000:]
    assert "Traceback" not in server.log
    a.page.context.close()
    b.page.context.close()
