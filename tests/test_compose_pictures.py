"""Issue 11 in the planner, with the scripted model (so the CLI and the app, which consume the
same events, behave the same): outline headings, the automatic picture count, every upload
placed or listed with its reason, photo descriptions for text-only models, complete captions,
English queries kept apart from captions, and the grounding edit."""
import io
import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from composer.article import Article, Candidate, Figure, Paragraph
from composer.images import decode_image_bytes
from composer.planner.caption import MAX_CHARS, caption_from_paragraph, parse_caption
from composer.planner.edit import EditError, ground, run_edit
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.retrieval.encoder import EncoderBase
from composer.testing import ScriptedModel

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 20),
          "white": (250, 250, 250)}
WORDS = {"red": "a ladybug; a daisy", "green": "a green lawn", "blue": "a blue sky over the sea",
         "yellow": "a lemon on a table", "white": "snow on a roof"}


def upload(color, name=None):
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), COLORS[color]).save(buf, "PNG")
    return decode_image_bytes(buf.getvalue(), name or f"{color}.png")


def color_of(image):
    return min(COLORS, key=lambda c: sum(abs(a - b) for a, b in zip(COLORS[c], image.getpixel((0, 0)))))


class DescribingEncoder(EncoderBase):
    """Words and vectors by colour: a paragraph that names a colour's thing matches its photo."""

    name = "describing"
    keys = {"red": "ladybug", "green": "lawn", "blue": "sea", "yellow": "lemon", "white": "snow"}

    def describe(self, images):
        return [WORDS[color_of(im)] for im in images]

    def encode_texts(self, texts):
        return np.array([[1.0 if key in t.lower() else 0.0 for key in self.keys.values()] for t in texts])

    def encode_images(self, images):
        return np.array([[1.0 if c == color_of(im) else 0.0 for c in self.keys] for im in images])


class Library:
    def __init__(self, n):
        self.refs = [upload(c, f"lib{i}.png").ref for i, c in enumerate(list(COLORS) * 3)][:n]

    def candidates(self, query, k, exclude_hashes=()):
        return [Candidate(r, 0.9 - i / 100) for i, r in enumerate(self.refs) if r.sha256 not in exclude_hashes][:k]


def run(model, request, **kw):
    events = list(compose(request, model, **kw))
    assert events[-1].kind == "done"
    return events, events[-1].data["article"]


def figures_after_text(article):
    for i, b in enumerate(article.blocks):
        if isinstance(b, Figure):
            assert isinstance(article.blocks[i - 1], Paragraph) and not article.blocks[i - 1].is_heading


# --- headings ---------------------------------------------------------------------------------
OUTLINE = ("Why ladybugs matter", "Where they live", "How to attract them")


def part_for(prompt):
    point = re.search(r"Now write only the part about: (.*)", prompt.turns[-1].text).group(1)
    return f"This part is about {point.lower()}. It has a second sentence about the garden."


def test_each_outline_point_is_a_heading_in_the_writers_words_and_never_gets_a_picture():
    model = ScriptedModel(part_for, place="1, 2, 3, 4, 5, 6", small=True)
    events, article = run(model, ComposeRequest("Ladybugs", OUTLINE, image_count=3), library=Library(6))
    headings = [p.text for p in article.paragraphs if p.is_heading]
    assert headings == list(OUTLINE)
    # each heading stands over its own part
    for point in OUTLINE:
        at = article.blocks.index(Paragraph(point, "heading", 2))
        assert point.lower() in article.blocks[at + 1].text
    figures_after_text(article)
    assert len(article.figures) == 3


def test_headings_default_needs_three_points_and_can_be_turned_off():
    assert ComposeRequest("T", OUTLINE).use_headings
    assert not ComposeRequest("T", OUTLINE[:2]).use_headings
    assert not ComposeRequest.from_dict({"title": "T", "outline": list(OUTLINE), "headings": False}).use_headings
    model = ScriptedModel(part_for, small=True)
    _, article = run(model, ComposeRequest("Ladybugs", OUTLINE, headings=False, image_count=0))
    assert not any(p.is_heading for p in article.paragraphs)
    # a model writing the whole article is asked for the headings in the writer's words
    whole = ScriptedModel("## why LADYBUGS matter!\nOne.\n\n## 2. Where they live\nTwo.\n\n## A garden\nThree.")
    _, article = run(whole, ComposeRequest("Ladybugs", OUTLINE, image_count=0))
    assert "in exactly these words, as a heading" in whole.prompts[0].turns[-1].text
    # the model's headings for outline points become the writer's words; its own stay its own
    assert [p.text for p in article.paragraphs if p.is_heading] == [OUTLINE[0], OUTLINE[1], "A garden"]


# --- the automatic count ------------------------------------------------------------------------
SENTENCE = "The garden wakes slowly and the ladybugs climb the stems. "  # ten words
LONG = "\n\n".join(f"Part {i} begins here. " + (SENTENCE * 10).strip() for i in range(9))  # 9 x 104 words


def test_auto_gives_a_900_word_article_at_least_four_library_pictures():
    model = ScriptedModel(LONG, place="Paragraph numbers: 3")  # the model names one; the rule fills
    events, article = run(model, ComposeRequest("Long", image_count="auto"), library=Library(12))
    assert 4 <= len(article.figures) <= 5  # ~1 per 150-200 words, at most every other paragraph
    third = article.blocks.index(article.paragraphs[2])
    assert isinstance(article.blocks[third + 1], Figure)  # the model's pick is kept
    assert not [e for e in events if e.kind == "fallback"]


def test_auto_places_every_upload_one_per_paragraph():
    ups = [upload(c) for c in ("red", "green", "blue")]
    for encoder in (None, DescribingEncoder()):
        model = ScriptedModel("One.\n\nTwo.\n\nThree.\n\nFour.", place="1")
        events, article = run(model, ComposeRequest("Few words"), uploads=ups, encoder=encoder)
        assert {f.image.sha256 for f in article.figures} == {u.ref.sha256 for u in ups}
        figures_after_text(article)
        report = article.metadata["uploads"]
        assert len({r["block"] for r in report}) == 3
        assert all(r["block"] is not None and isinstance(article.blocks[r["block"]], Figure) for r in report)
        assert all(article.blocks[r["block"]].image.sha256 == r["sha256"] and r["reason"] == "" for r in report)


def test_an_upload_that_cannot_be_placed_is_listed_with_its_reason():
    ups = [upload(c) for c in ("red", "green", "blue")]
    model = ScriptedModel("One about a ladybug.\n\nTwo about the sea.", place="1, 2")
    events, article = run(model, ComposeRequest("Short"), uploads=ups, encoder=DescribingEncoder())
    report = {r["name"]: r for r in article.metadata["uploads"]}
    assert len(article.figures) == 2
    (unused,) = [r for r in report.values() if r["block"] is None]
    assert unused["name"] == "green.png" and "2 paragraphs for 3 photos" in unused["reason"]
    assert unused["description"] == "a green lawn" and unused["sha256"] == ups[1].ref.sha256
    assert any("green.png" in e.data["message"] for e in events if e.kind == "warning")


# --- photos described to text-only models --------------------------------------------------------
def test_descriptions_reach_the_write_prompt_of_a_text_only_model():
    ups = [upload("red", "garden.png"), upload("blue", "coast.png")]
    whole = ScriptedModel("A ladybug on a leaf.\n\nThe sea at dawn.", place="1, 2")
    _, article = run(whole, ComposeRequest("Summer"), uploads=ups, encoder=DescribingEncoder())
    prompt = whole.prompts[0].turns[-1].text
    assert "Photo 1: a ladybug; a daisy" in prompt and "Photo 2: a blue sky over the sea" in prompt
    assert "mention each one" in prompt
    assert [r["description"] for r in article.metadata["uploads"]] == ["a ladybug; a daisy", "a blue sky over the sea"]
    # the part-by-part prompts of a small model carry them too
    small = ScriptedModel(part_for, small=True)
    run(small, ComposeRequest("Summer", OUTLINE[:2], image_count=0), uploads=ups, encoder=DescribingEncoder())
    writes = [p for p in small.prompts if small.step_of(p) == "write"]
    assert len(writes) == 2 and all("Photo 2: a blue sky over the sea" in p.turns[-1].text for p in writes)


def test_a_model_that_sees_images_gets_the_images_not_the_words():
    ups = [upload("red"), upload("blue")]
    model = ScriptedModel("One.\n\nTwo.", place="1, 2", sees_images=True)
    run(model, ComposeRequest("Summer"), uploads=ups, encoder=DescribingEncoder())
    write = model.prompts[0]
    assert len(write.images) == 2 and "Photo 1" not in write.turns[-1].text


def test_photos_are_matched_by_paragraph_then_captioned_from_their_description():
    ups = [upload("blue", "coast.png"), upload("red", "garden.png")]
    model = ScriptedModel("A ladybug climbs a daisy stem.\n\nWaves roll in from the sea.", place="1, 2",
                          caption=lambda p: "Shown: " + re.search(r"The photo shows: (.*)\.", p.turns[-1].text)[1])
    _, article = run(model, ComposeRequest("Summer"), uploads=ups, encoder=DescribingEncoder())
    by_block = {article.blocks[i - 1].text: b for i, b in enumerate(article.blocks) if isinstance(b, Figure)}
    assert by_block["A ladybug climbs a daisy stem."].image == ups[1].ref
    assert by_block["A ladybug climbs a daisy stem."].caption == "Shown: a ladybug; a daisy"
    assert by_block["Waves roll in from the sea."].image == ups[0].ref


# --- captions are complete phrases ---------------------------------------------------------------
RUN_ON = " ".join(["and then the little red ladybug walked"] * 5)  # 35 words, no clause boundary


def test_a_caption_too_long_is_asked_again_shorter_then_replaced_never_cut():
    answers = iter([RUN_ON, "A ladybug on a daisy"])
    model = ScriptedModel("A ladybug climbs a daisy stem.\n\nMore text here.", place="1",
                          caption=lambda p: next(answers))
    events, article = run(model, ComposeRequest("Summer", image_count=1), library=Library(3))
    asks = [p.turns[-1].text for p in model.prompts if model.step_of(p) == "caption"]
    assert "under 12 words" in asks[0] and "under 8 words" in asks[1]
    assert article.figures[0].caption == "A ladybug on a daisy"
    # still too long: the photo's description stands in, whole
    model = ScriptedModel("A ladybug climbs a daisy stem.\n\nMore text here.", place="1", caption=RUN_ON)
    events, article = run(model, ComposeRequest("Summer", image_count=1), uploads=[upload("red")],
                          encoder=DescribingEncoder())
    assert article.figures[0].caption == "a ladybug; a daisy"
    assert any("description" in e.data["reason"] for e in events if e.kind == "fallback")


def test_no_caption_ever_ends_with_an_ellipsis():
    model = ScriptedModel(LONG, place="1, 3, 5", caption=RUN_ON)
    _, article = run(model, ComposeRequest("Long", image_count=3), library=Library(6))
    assert article.figures and not any(f.caption.endswith(("…", "...")) for f in article.figures)
    assert all(len(f.caption) <= MAX_CHARS for f in article.figures)


@given(st.text(min_size=1))
def test_parsed_and_rule_captions_are_never_cut_with_an_ellipsis(text):
    for cap in (parse_caption(text.replace("…", "")), caption_from_paragraph(text.replace("…", ""))):
        assert cap is None or not cap.endswith("…")


def test_a_long_first_sentence_gives_its_first_clause():
    para = ("The ladybug, a small beetle that gardeners welcome because it eats the aphids that would otherwise "
            "strip their roses bare by the middle of every single summer, is red.")
    assert caption_from_paragraph(para) == "The ladybug"


# --- the grounding edit --------------------------------------------------------------------------
def test_ground_quotes_the_flagged_claims_and_materials_and_streams():
    art = Article("T", (Paragraph("Ladybugs live for ten years."), Paragraph("Next.")), {"request": {"language": "en"}})
    model = ScriptedModel("", edit="Ladybugs live for about a year.")
    events = list(ground(art, 0, model, ["Ladybugs live for ten years."], "A ladybug lives about one year.", seed=1))
    assert [e.kind for e in events][-1] == "done" and any(e.kind == "text" for e in events)
    prompt = model.prompts[-1].turns[-1].text
    assert '- "Ladybugs live for ten years."' in prompt and "A ladybug lives about one year." in prompt
    assert events[-1].data["article"].blocks[0].text == "Ladybugs live for about a year."
    zh = ScriptedModel("", edit="瓢虫大约活一年。", dialect="xcomposer")
    new = run_edit(ground(art, 0, zh, ["活十年"], "瓢虫寿命约一年"))
    assert "“活十年”" in zh.prompts[-1].turns[-1].text and "素材：瓢虫寿命约一年" in zh.prompts[-1].turns[-1].text
    assert new.blocks[0].text == "瓢虫大约活一年。"
    try:
        run_edit(ground(art.with_blocks([Paragraph("H", "heading", 2)]), 0, model, [], ""))
    except EditError:
        pass
    else:
        raise AssertionError("a heading is not grounded by the model")
