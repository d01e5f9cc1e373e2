"""A small model's captions are made from what is known of the picture, never from its own text:
the encoder's description, the file name's words, else the paragraph's first clause."""
from pathlib import Path

import pytest

from composer.article import Figure
from composer.images import load_image
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.planner.true_captions import from_description, from_file_name, true_caption
from composer.testing import ScriptedModel

ROOT = Path(__file__).parent.parent
JUNK = "The article is here for you to read and enjoy. One complete phrase that says what the photo shows"


@pytest.mark.parametrize("name, words", [
    ("marigold-border.jpg", "Marigold border"), ("IMG_2041.jpg", None), ("DSC01234.JPG", None),
    ("b72a08d4d8233b29aa01.jpg", None), ("ladybirdLarva_on_leaf (2).png", "Ladybird larva on leaf"),
    ("/tmp/gradio/abc123/cat.jpg", "Cat"), ("PXL_20240101_cafe_window.jpg", "Cafe window"),
])
def test_file_names_give_their_words(name, words):
    assert from_file_name(name) == words


def test_descriptions_become_one_phrase():
    assert from_description("a tabby cat; a window seat") == "A tabby cat"  # its best guess, first
    assert from_description("an espresso cup") == "An espresso cup"
    assert from_description("") is None
    assert true_caption("The café opens at seven, and the regulars come in. More.", "", "IMG_1.jpg") == \
        "The café opens at seven, and the regulars come in."


def test_a_small_model_never_writes_the_captions():
    photos = [load_image(ROOT / "assets" / "library" / n) for n in ("cat.jpg", "coffee.jpg")]
    request = ComposeRequest("A morning at the café", ("The cat", "The coffee"),
                             "A tabby cat sleeps on the window seat. The espresso is pulled at 6:45.",
                             length=60, image_count=2)
    model = ScriptedModel("A tabby cat sleeps on the window seat.\n\nThe espresso is pulled at 6:45.",
                          caption=JUNK, place="1, 2", small=True)
    article = list(compose(request, model, seed=0, uploads=photos))[-1].data["article"]
    captions = [b.caption for b in article.blocks if isinstance(b, Figure)]
    assert captions and all(c in {"Cat", "Coffee"} for c in captions), captions  # no encoder: the file names
    assert not any("caption of a photograph" in p.turns[-1].text for p in model.prompts)  # never asked
