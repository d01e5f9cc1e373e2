"""The planner's logic with a scripted model: every bad answer survives, and the events say so."""
import numpy as np
from PIL import Image

from composer.article import Figure, Paragraph
from composer.images import decode_image_bytes
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.retrieval.encoder import EncoderBase
from composer.testing import ScriptedModel

ARTICLE = ("## Morning\nThe café opens at seven and the first shot is pulled at six forty-five.\n\n"
           "The crema tells you whether the beans are fresh and the grind is right.\n\n"
           "## The cat\nChelsea the tabby sleeps on the window seat most mornings.\n\n"
           "Regulars are greeted by name, and the cups are always warm.")


def upload(color, name):
    import io

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, "PNG")
    return decode_image_bytes(buf.getvalue(), name)


def run(model, request, **kw):
    events = list(compose(request, model, **kw))
    assert events[-1].kind == "done"
    return events, events[-1].data["article"]


def kinds(events, kind):
    return [e for e in events if e.kind == kind]


def test_good_answers_place_caption_and_assign_each_upload_once():
    model = ScriptedModel(ARTICLE, place="Paragraph numbers: 1, 4", caption="A warm cup of espresso")
    ups = [upload("red", "a.png"), upload("blue", "b.png")]
    events, article = run(model, ComposeRequest("A café", image_count=2), uploads=ups, seed=1)
    assert not kinds(events, "fallback")
    text = "".join(e.data["delta"] for e in kinds(events, "text"))
    assert "Chelsea" in text
    blocks = article.blocks
    figs = [(i, b) for i, b in enumerate(blocks) if isinstance(b, Figure)]
    assert len(figs) == 2
    # each figure follows a text paragraph, never a heading
    for i, f in figs:
        assert isinstance(blocks[i - 1], Paragraph) and not blocks[i - 1].is_heading
        assert f.source == "upload" and f.caption == "A warm cup of espresso"
    assert {f.image.sha256 for _, f in figs} == {u.ref.sha256 for u in ups}
    assert article.metadata["seed"] == 1 and article.metadata["request"]["title"] == "A café"
    assert events[-1].data["usage"]["total"] > 0


def test_garbage_answers_fall_back_and_say_so():
    model = ScriptedModel(ARTICLE, place="I like turtles", caption="...")
    events, article = run(model, ComposeRequest("A café", image_count=2),
                          uploads=[upload("red", "a.png"), upload("blue", "b.png")])
    steps = [e.data["step"] for e in kinds(events, "fallback")]
    assert steps.count("place") == 1 and steps.count("caption") == 2
    assert len(article.figures) == 2
    assert article.metadata["fallbacks"] and all(f.caption for f in article.figures)


def test_more_slots_than_images_and_zero_images():
    model = ScriptedModel(ARTICLE, place="1, 2, 3, 4")
    events, article = run(model, ComposeRequest("A café", image_count=4), uploads=[upload("red", "a.png")])
    assert len(article.figures) == 1
    assert any("only 1 images" in e.data["message"] for e in kinds(events, "warning"))

    events, article = run(ScriptedModel(ARTICLE), ComposeRequest("A café", image_count=2))
    assert article.figures == [] and len(article.paragraphs) == 6
    assert any("no images" in e.data["message"] for e in kinds(events, "warning"))


def test_empty_article_falls_back_to_outline():
    model = ScriptedModel("<|im_end|>\n\n")
    events, article = run(model, ComposeRequest("T", outline=("one", "two"), materials="facts"))
    assert [p.text for p in article.paragraphs] == ["one", "two", "facts"]
    assert kinds(events, "fallback")[0].data["step"] == "write"


class StubEncoder(EncoderBase):
    """Captions and images as hand-made vectors, so the optimal assignment is known."""

    name = "stub"

    def encode_texts(self, texts):
        return np.array([[1.0, 0.0] if "cat" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    def encode_images(self, images):
        return np.array([[0.0, 1.0] if img.getpixel((0, 0))[2] > 128 else [1.0, 0.0] for img in images],
                        dtype=np.float32)


def test_encoder_assignment_matches_caption_to_image():
    captions = iter(["a cup of coffee", "a cat on a window seat"])
    model = ScriptedModel(ARTICLE, place="1, 3", caption=lambda p: next(captions))
    red, blue = upload("red", "cat.png"), upload("blue", "coffee.png")  # red → "cat" vector
    _, article = run(model, ComposeRequest("A café", image_count=2), encoder=StubEncoder(), uploads=[red, blue])
    by_caption = {f.caption: f.image.sha256 for f in article.figures}
    assert by_caption == {"a cup of coffee": blue.ref.sha256, "a cat on a window seat": red.ref.sha256}


def test_without_encoder_the_model_chooses_by_log_likelihood():
    # The scripted model prefers the last option offered: the choice must follow its scores.
    model = ScriptedModel(ARTICLE, place="1, 3", choose_scores=lambda p, opts: list(range(len(opts))))
    a, b = upload("red", "a.png"), upload("blue", "b.png")
    _, article = run(model, ComposeRequest("A café", image_count=2), uploads=[a, b])
    assert [f.image.sha256 for f in article.figures] == [b.ref.sha256, a.ref.sha256]


class FakeLibrary:
    def __init__(self, refs):
        self.refs = refs
        self.calls = []

    def candidates(self, caption, k, exclude_hashes=()):
        from composer.article import Candidate

        self.calls.append(list(exclude_hashes))
        return [Candidate(r, 1.0 - i / 10) for i, r in enumerate(self.refs) if r.sha256 not in exclude_hashes][:k]


def test_library_fills_slots_without_reuse_and_keeps_candidates():
    refs = [upload(c, f"{c}.png").ref for c in ("red", "green", "blue")]
    lib = FakeLibrary(refs)
    model = ScriptedModel(ARTICLE, place="1, 3, 4")
    _, article = run(model, ComposeRequest("A café", image_count=3), library=lib)
    shas = [f.image.sha256 for f in article.figures]
    assert len(shas) == 3 == len(set(shas))
    assert all(f.source == "library" and f.candidates for f in article.figures)
    assert all(f.image in [c.image for c in f.candidates] for f in article.figures)


def test_library_assignment_is_global_not_first_come():
    from composer.article import Candidate

    a, b = upload("red", "a.png").ref, upload("blue", "b.png").ref

    class Library:
        table = {"first": [(a, 0.9), (b, 0.8)], "second": [(a, 0.85), (b, 0.1)]}

        def candidates(self, caption, k, exclude_hashes=()):
            return [Candidate(r, s) for r, s in self.table[caption] if r.sha256 not in exclude_hashes][:k]

    captions = iter(["first", "second"])
    model = ScriptedModel(ARTICLE, place="1, 3", caption=lambda p: next(captions))
    _, article = run(model, ComposeRequest("A café", image_count=2), library=Library())
    # slot by slot, "first" would take a (0.9) and leave "second" with b (0.1): total 1.0 < 1.65
    assert [f.image for f in article.figures] == [b, a]


def test_a_model_that_sees_images_chooses_library_pictures_and_never_reuses(tmp_path):
    from composer.images import load_image

    for c in ("red", "green", "blue"):
        Image.new("RGB", (8, 8), c).save(tmp_path / f"{c}.png")
    refs = [load_image(tmp_path / f"{c}.png").ref for c in ("red", "green", "blue", "missing")[:3]]
    refs.append(upload("white", str(tmp_path / "gone.png")).ref)  # indexed, then deleted
    lib = FakeLibrary(refs)
    model = ScriptedModel(ARTICLE, place="1, 3, 4", sees_images=True,
                          choose_scores=lambda p, opts: list(range(len(opts))))
    _, article = run(model, ComposeRequest("A café", image_count=3), library=lib)
    shas = [f.image.sha256 for f in article.figures]
    assert len(shas) == 3 == len(set(shas))
    assert lib.calls[1] == [shas[0]]  # the planner excludes what it already used
    assert all(not f.image.path.endswith("gone.png") for f in article.figures)


def test_library_match_below_the_encoders_threshold_leaves_the_slot_empty():
    from composer.article import Candidate

    refs = [upload(c, f"{c}.png").ref for c in ("red", "green")]

    class WeakLibrary:
        def candidates(self, caption, k, exclude_hashes=()):
            return [Candidate(r, 0.05) for r in refs if r.sha256 not in exclude_hashes][:k]

    class Encoder(EncoderBase):
        name, min_match = "stub", 0.15

    model = ScriptedModel(ARTICLE, place="1")
    events, article = run(model, ComposeRequest("A café", image_count=1), encoder=Encoder(), library=WeakLibrary())
    empty = [b for b in article.blocks if isinstance(b, Figure)]
    assert len(empty) == 1 and empty[0].image is None and len(empty[0].candidates) == 2
    assert any("left empty" in e.data["message"] for e in kinds(events, "warning"))
