"""Generate / Regenerate in the editor's core (no browser): a model job of its own that Stop
ends, landing on the article as it is when the picture comes."""
import threading

import pytest

from composer.article import Figure
from composer.editor_session import NO_ENGINE, EditorSession, block_key, figure_prompt
from composer.imagegen import load_imagegen
from composer.imagegen.testing import LoopbackImageServer
from composer.model.remote_pool import RetryPolicy
from composer.model.serialized import SerializedModel
from composer.planner import edit as edits
from composer.services import Services
from composer.testing import ScriptedModel
from composer.workspace import Workspace

TEXT = "Sputnik 1 beeped from orbit in 1957.\n\nGagarin flew Vostok 1 in 1961."
QUICK = RetryPolicy(attempts=2, total_s=1.0, base_s=0.01, cap_s=0.02)


@pytest.fixture
def engine():
    with LoopbackImageServer() as server:
        yield server


def services_for(url):
    model = SerializedModel(ScriptedModel(TEXT, place="1", caption="A metal sphere in orbit"))
    return Services(model, None, None, load_imagegen(f"openai-images:{url}?size=128x96", retry=QUICK))


def composed(tmp_path, services):
    s = EditorSession(Workspace(tmp_path / "data"))
    updates = list(s.compose({"title": "The space race", "length": 100, "image_count": 1}, [], services))
    assert updates[-1].article_changed, updates[-1].status
    return s


def figure_at(s):
    return next((i, b) for i, b in enumerate(s.article.blocks) if isinstance(b, Figure))


def test_compose_in_the_editor_fills_the_slot_and_regenerate_gives_a_new_seed(tmp_path, engine):
    services = services_for(engine.url)
    s = composed(tmp_path, services)
    i, fig = figure_at(s)
    assert fig.source == "generated" and str(tmp_path / "data") in fig.image.path  # adopted by the workspace
    first = fig.generated
    [*_, done] = s.generate(i, "", services, key=block_key(fig))
    assert done.article_changed and "Picture generated" in done.status, done.status
    _, again = figure_at(s)
    assert again.generated.seed != first.seed and again.generated.prompt == first.prompt
    assert again.image.sha256 != fig.image.sha256
    # an edited prompt is used as it is
    [*_, done] = s.generate(i, "a silver sphere with four antennas", services, key=block_key(again))
    assert figure_at(s)[1].generated.prompt == "a silver sphere with four antennas"
    assert engine.bodies[-1][1]["prompt"] == "a silver sphere with four antennas"
    assert s.undo() and figure_at(s)[1].generated.seed == again.generated.seed  # Undo brings it back
    services.model.close()


def test_add_picture_with_an_engine_adds_a_slot_that_generate_fills(tmp_path, engine):
    services = services_for(engine.url)
    s = composed(tmp_path, services)
    i, fig = figure_at(s)
    s.edit(lambda a, at: edits.remove_figure(a, at), i)
    [*_, added] = s.model_edit("add_picture", i - 1, "A rocket on its pad", services)  # no library, no photos
    assert added.article_changed, added.status
    i, empty = figure_at(s)
    assert empty.image is None and empty.caption == "A rocket on its pad"
    prompt = figure_prompt(s.article, i)
    assert prompt.startswith("A rocket on its pad, editorial illustration")
    [*_, done] = s.generate(i, "", services, key=block_key(empty))
    assert figure_at(s)[1].source == "generated", done.status
    assert figure_at(s)[1].generated.prompt == prompt
    services.model.close()


def test_stop_ends_a_generation_and_the_article_is_as_it_was(tmp_path):
    with LoopbackImageServer() as quick:
        services = services_for(quick.url)
        s = composed(tmp_path, services)
    with LoopbackImageServer(delay_s=30) as slow:
        services.imagegen = load_imagegen(f"openai-images:{slow.url}?size=128x96", retry=QUICK)
        before = s.article
        i, fig = figure_at(s)
        job = s.generate(i, "", services, key=block_key(fig))
        assert next(job).status == "Generating a picture…"
        threading.Timer(0.3, s.stop).start()
        [last] = list(job)
        assert last.status.startswith("Stopped") and last.error
        assert s.article == before
    services.model.close()


def test_a_failed_generation_says_why_and_changes_nothing(tmp_path, engine):
    services = services_for(engine.url)
    s = composed(tmp_path, services)
    before = s.article
    i, fig = figure_at(s)
    engine.close()
    [*_, last] = s.generate(i, "", services, key=block_key(fig))
    assert last.error and "No picture was generated" in last.status and "no server is available" in last.status
    assert s.article == before
    services.imagegen = None
    assert list(s.generate(i, "", services))[-1].status == NO_ENGINE
    services.model.close()
