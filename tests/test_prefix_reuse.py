"""Prefix reuse in the embedded backend: a six-picture article's place, caption and choice steps
run at least 3x fewer tokens through the model than without reuse, with identical output."""
from pathlib import Path

import pytest

from composer.images import load_image
from composer.model.embedded import EmbeddedModel
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.testing import FixedDraft

ROOT = Path(__file__).resolve().parent.parent


def run(reuse: bool):
    model = FixedDraft(EmbeddedModel(reuse_prefix=reuse))
    uploads = [load_image(p) for p in sorted((ROOT / "assets/library").glob("*.jpg"))[:6]]
    events = list(compose(ComposeRequest("A morning at the café", image_count=6), model, uploads=uploads, seed=5))
    done = events[-1].data
    steps = {k: v["total"] for k, v in done["usage"]["by_stage"].items() if k in ("place", "caption", "select")}
    return done["article"], steps


@pytest.mark.slow
def test_six_picture_article_runs_three_times_fewer_tokens():
    with_reuse, tokens_on = run(True)
    without, tokens_off = run(False)
    assert with_reuse.blocks == without.blocks  # identical article, figures and captions
    assert len(with_reuse.figures) == 6
    assert set(tokens_on) == {"place", "caption", "select"}
    assert sum(tokens_off.values()) >= 3 * sum(tokens_on.values()), (tokens_off, tokens_on)
