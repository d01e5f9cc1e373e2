"""Both dialects compose and edit end to end on real backends: the embedded model speaks the
generic dialect, a tiny random-weight XComposer2 the xcomposer one (its text is noise; the test
checks the plumbing, the fallbacks and the invariants, not the prose)."""
from pathlib import Path

import pytest

from composer.article import Figure, Paragraph
from composer.images import load_image
from composer.model import load_model
from composer.planner.edit import EditError, add_figure, insert_paragraph, remove_figure, rewrite, run_edit, shorten
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = [load_image(ROOT / "assets/library" / n) for n in ("cat.jpg", "coffee.jpg", "rocket.jpg")]
REQUEST = ComposeRequest("A morning at the café", ("opening", "the cat", "closing"),
                         "The café opens at seven. A tabby cat sleeps on the window seat.", length=120, image_count=2)


def composed(model, request=REQUEST, seed=11):
    events = list(compose(request, model, uploads=PHOTOS, seed=seed))
    assert events[-1].kind == "done"
    return events, events[-1].data["article"]


def check_article(article, n_figures):
    figs = [(i, b) for i, b in enumerate(article.blocks) if isinstance(b, Figure)]
    assert len(figs) == n_figures
    shas = [f.image.sha256 for _, f in figs]
    assert len(set(shas)) == len(shas) and set(shas) <= {p.ref.sha256 for p in PHOTOS}
    for i, _ in figs:
        assert isinstance(article.blocks[i - 1], Paragraph) and not article.blocks[i - 1].is_heading


def edit_round(article, model):
    text_at = next(i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and not b.is_heading)
    results = []
    for op in (lambda a: rewrite(a, text_at, model, seed=1), lambda a: shorten(a, text_at, model, seed=2),
               lambda a: insert_paragraph(a, text_at, "after", "the espresso machine", model, seed=3)):
        try:
            results.append(run_edit(op(article)))
        except EditError as exc:  # an unusable answer is refused, never half-applied
            assert "unchanged" in str(exc) or "nothing was inserted" in str(exc)
    return results


@pytest.fixture(scope="module")
def embedded():
    return load_model("embedded")


@pytest.mark.slow
def test_generic_dialect_with_embedded_model_is_reproducible_and_editable(embedded):
    events, article = composed(embedded)
    check_article(article, 2)
    _, again = composed(embedded)
    assert again.blocks == article.blocks  # same request, model and seed: same article
    edits = edit_round(article, embedded)
    assert edits, "the embedded model should manage at least one usable edit"
    for new in edits:
        assert new.title == article.title and len(new.figures) == 2
    bare = [i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and not b.is_heading
            and not (i + 1 < len(article.blocks) and isinstance(article.blocks[i + 1], Figure))]
    if not bare:  # every paragraph already has a picture: make room by removing the last one
        article = remove_figure(article, max(i for i, b in enumerate(article.blocks) if isinstance(b, Figure)))
        bare = [i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and not b.is_heading
                and not (i + 1 < len(article.blocks) and isinstance(article.blocks[i + 1], Figure))]
    added = run_edit(add_figure(article, bare[-1], embedded, uploads=PHOTOS))
    assert len(added.figures) == len(article.figures) + 1
    check_article(added, len(added.figures))


@pytest.fixture(scope="module")
def tiny_xcomposer():
    from composer.model.xcomposer2.backend import XComposer2Chat
    from composer.model.xcomposer2.testing import tiny_model, tiny_tokenizer

    return XComposer2Chat.from_model(tiny_model(seed=3), tiny_tokenizer())


def test_xcomposer_dialect_with_tiny_random_xcomposer2(tiny_xcomposer):
    model = tiny_xcomposer
    assert model.dialect == "xcomposer" and model.sees_images
    events, article = composed(model, ComposeRequest("咖啡馆", ("开门", "猫", "结尾"), "素材", length=60,
                                                     language="zh", image_count=2))
    kinds = [e.kind for e in events]
    assert kinds[0] == "stage" and "segments" in kinds and kinds[-1] == "done"
    assert len(article.paragraphs) >= 1
    n = min(2, len([p for p in article.paragraphs if not p.is_heading]))
    check_article(article, n)
    usage = events[-1].data["usage"]
    assert usage["prefill"] > 0 and usage["by_stage"]["write"]["prefill"] > 0
    _, again = composed(model, ComposeRequest("咖啡馆", ("开门", "猫", "结尾"), "素材", length=60,
                                              language="zh", image_count=2))
    assert again.blocks == article.blocks
    for new in edit_round(article, model):
        assert len(new.figures) == len(article.figures)
