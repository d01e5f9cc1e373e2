"""Prefix reuse in the embedded backend: a six-picture article's place, caption and choice steps
run at least 3x fewer tokens through the model than without reuse, with identical output."""
from pathlib import Path

import pytest

from composer.images import load_image
from composer.model.embedded import EmbeddedModel
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest

ROOT = Path(__file__).resolve().parent.parent
DRAFT = "\n\n".join([
    "The café opens at seven, but the owner is there at six to warm the machine and the cups.",
    "The first shot of the day is pulled at six forty-five to dial in the grinder: eighteen grams in, thirty-six out.",
    "Crema that is hazel-brown and lasts a minute means fresh beans and the right grind.",
    "A tabby cat from the flat upstairs sleeps on the window seat most mornings.",
    "She has her own water bowl by the door, and the regulars greet her by name.",
    "About half the morning customers are regulars, and the barista knows their orders.",
    "By nine the rush is over, and the owner finally drinks a coffee of her own.",
    "Small cafés like this one are where a neighbourhood meets itself every morning.",
])


class FixedDraft:
    """The embedded model with the first draft given: writing is not what reuse can save, so the
    comparison covers exactly the steps that share the article prefix."""

    def __init__(self, model):
        self.model = model
        self.name, self.dialect, self.sees_images, self.usage = model.name, model.dialect, False, model.usage

    def stream(self, prompt, sampling):
        yield DRAFT

    def complete(self, prompts, sampling):
        return self.model.complete(prompts, sampling)

    def choose(self, prompt, options):
        return self.model.choose(prompt, options)


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
