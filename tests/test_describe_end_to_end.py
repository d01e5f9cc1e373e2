"""The embedded model end to end with the writer's photos: their descriptions reach every write
prompt of the text-only model, article.json keeps them, every photo is placed or listed with
its reason, and no caption is cut with an ellipsis."""
from pathlib import Path

import numpy as np

from composer.images import load_image
from composer.model.base import ChatModelBase
from composer.model.embedded import EmbeddedModel
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.retrieval.encoder import EncoderBase

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = [load_image(ROOT / "assets/library" / n) for n in ("cat.jpg", "coffee.jpg")]
WORDS = {id(PHOTOS[0].image): "a tabby cat; a window seat", id(PHOTOS[1].image): "an espresso cup; a saucer"}


class Recording(ChatModelBase):
    """The real model, with the prompts it was given kept for the test to read."""

    def __init__(self, model):
        self.model, self.prompts = model, []
        self.name, self.dialect, self.small, self.usage = model.name, model.dialect, model.small, model.usage

    def stream(self, prompt, sampling):
        self.prompts.append(prompt)
        yield from self.model.stream(prompt, sampling)

    def complete(self, prompts, sampling):
        self.prompts.extend(prompts)
        return self.model.complete(prompts, sampling)

    def choose(self, prompt, options):
        self.prompts.append(prompt)
        return self.model.choose(prompt, options)


class WordsEncoder(EncoderBase):
    """Describes the two photos in fixed words; vectors match a paragraph to the photo it names."""

    name = "words"

    def describe(self, images):
        return [WORDS[id(im)] for im in images]

    def encode_texts(self, texts):
        return np.array([[("cat" in t.lower()) + 0.1, ("coffee" in t.lower() or "espresso" in t.lower()) + 0.1]
                         for t in texts])

    def encode_images(self, images):
        return np.array([[1.0, 0.0] if "cat" in WORDS[id(im)] else [0.0, 1.0] for im in images])


def test_photo_descriptions_reach_the_embedded_models_prompts():
    model = Recording(EmbeddedModel())
    request = ComposeRequest("A morning at the café", ("the cat on the window seat", "the first espresso"),
                             "The café opens at seven. A tabby cat sleeps on the window seat.", length=80)
    events = list(compose(request, model, WordsEncoder(), uploads=PHOTOS, seed=3))
    article = events[-1].data["article"]
    writes = [p.turns[-1].text for p in model.prompts if "You are writing one part of the article" in p.turns[-1].text]
    assert len(writes) == 2  # the small model writes part by part from its notes; each part is told about the photos
    for text in writes:
        assert "Photo 1: a tabby cat; a window seat" in text and "Photo 2: an espresso cup; a saucer" in text
    report = article.metadata["uploads"]
    assert [r["description"] for r in report] == ["a tabby cat; a window seat", "an espresso cup; a saucer"]
    assert all((r["block"] is not None) != bool(r["reason"]) for r in report)  # placed, or why not
    assert {f.image.sha256 for f in article.figures} == {r["sha256"] for r in report if r["block"] is not None}
    assert article.figures and not any(f.caption.endswith("…") for f in article.figures)
