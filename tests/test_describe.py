"""Encoders describe photos in words: the embedded classifier on real photos, open_clip's
zero-shot vocabulary on the tiny random-weight model (shape and plumbing only)."""
from pathlib import Path

import numpy as np
from PIL import Image

from composer.retrieval.labels import describe_from_probabilities, with_article
from composer.retrieval.openclip import SCENE_WORDS, vocabulary_phrases

LIBRARY = Path(__file__).resolve().parent.parent / "assets/library"


def photo(name):
    return Image.open(LIBRARY / name).convert("RGB")


def test_embedded_describes_what_the_photos_show(embedded_encoder):
    cat, coffee, micrograph = embedded_encoder.describe([photo("cat.jpg"), photo("coffee.jpg"),
                                                         photo("tissue-microscopy.jpg")])
    assert "cat" in cat.split("; ")[0] and cat.count("; ") <= 2
    assert any(word in coffee for word in ("espresso", "cup", "coffee"))
    assert micrograph == ""  # ImageNet has no class for it: no confident wrong guess
    assert embedded_encoder.describe([]) == []


def test_open_clip_describe_shape_and_cached_vocabulary(tiny_clip):
    images = [photo("rocket.jpg"), photo("cat.jpg"), Image.new("RGB", (5, 300), "white")]
    described = tiny_clip.describe(images)
    assert len(described) == 3 and all(isinstance(d, str) for d in described)
    phrases, vectors = tiny_clip.vocabulary()
    assert vectors.shape == (len(phrases), tiny_clip.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert tiny_clip.vocabulary()[1] is vectors  # computed once per encoder
    assert tiny_clip.describe([]) == []


def test_vocabulary_is_imagenet_plus_the_shipped_scene_words():
    phrases = vocabulary_phrases()
    assert phrases[:2] == ["a tench", "a goldfish"]
    assert {"an astronaut in a spacesuit", "a rocket launch", "ancient coins"} <= set(phrases)
    assert len(phrases) == len({p.lower() for p in phrases}) > 1300
    assert SCENE_WORDS.is_file()


def test_describe_from_probabilities_floor_order_and_no_guess():
    phrases = ["a cat", "a dog", "a cup", "a cat"]
    probs = np.array([[0.5, 0.1, 0.4, 0.0], [0.2, 0.25, 0.25, 0.3], [0.34, 0.0, 0.33, 0.33]])
    assert describe_from_probabilities(probs, phrases, floor=0.3) == ["a cat; a cup", "a cat", "a cat; a cup"]
    assert describe_from_probabilities(probs, phrases, floor=0.6) == ["", "", ""]
    assert with_article("Egyptian cat") == "an Egyptian cat" and with_article("tabby") == "a tabby"
