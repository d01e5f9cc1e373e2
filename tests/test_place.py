from hypothesis import given
from hypothesis import strategies as st

from composer.article import Paragraph
from composer.planner.place import extract_indices, place, spread

PARAS = [Paragraph("Intro", "heading", 1)] + [Paragraph("word " * n) for n in (30, 80, 10, 60, 90, 20)] + [
    Paragraph("End", "heading", 2), Paragraph("word " * 40)]
TEXT_IDX = [i for i, p in enumerate(PARAS) if not p.is_heading]


def test_seg_tags_in_every_form():
    assert extract_indices("适合插入图像的行是<Seg2>, <Seg 5>, <seg_7>, <Seg>, <Seg-1>", "seg0") == [2, 5, 7, 1]


def test_exact_count_from_good_answer():
    r = place("<Seg2>, <Seg5>", PARAS, 2, "seg0", limit=10)
    assert r.slots == (2, 5) and r.fallback is None


def test_headings_out_of_range_and_repeats_are_dropped_and_rule_fills():
    r = place("<Seg0> <Seg7> <Seg99> <Seg2> <Seg2>", PARAS, 3, "seg0", limit=10)
    assert 2 in r.slots and len(r.slots) == 3 and 0 not in r.slots and 7 not in r.slots
    assert r.fallback and "1 of 3" in r.fallback


def test_no_tags_falls_back_to_spread_rule():
    r = place("I think pictures would be nice", PARAS, 2, "seg0", limit=10)
    assert r.fallback and len(r.slots) == 2
    assert set(r.slots) <= set(TEXT_IDX)


def test_generic_numbering_maps_through_index_map():
    r = place("Paragraphs 1 and 3", PARAS, 2, "one", limit=10, index_map=TEXT_IDX)
    assert r.slots == (TEXT_IDX[0], TEXT_IDX[2]) and r.fallback is None


def test_auto_is_capped_by_limit_and_spread_prefers_long_paragraphs():
    r = place("", PARAS, "auto", "seg0", limit=2)
    assert len(r.slots) == 2 and r.fallback
    assert spread(PARAS, 1) == (5,)  # the longest text paragraph
    assert spread(PARAS, 2) == (2, 5)  # longest of each half


def test_auto_never_pictures_every_paragraph():
    r = place("1, 2, 3, 4, 5, 6, 7", PARAS, "auto", "one", limit=12, index_map=TEXT_IDX)
    assert len(r.slots) == 2 and r.fallback is None  # 330 words: one picture per ~175


def test_auto_is_one_picture_per_150_to_200_words_model_first_rule_fills():
    paras = [Paragraph("word " * 100) for _ in range(10)]  # 1000 words
    r = place("3", paras, "auto", "one", limit=12)
    assert 5 <= len(r.slots) <= 6 and 2 in r.slots and r.fallback is None
    assert all(b - a >= 1 for a, b in zip(r.slots, r.slots[1:]))
    # at most every other paragraph, however long the text
    assert len(place("", [Paragraph("word " * 900), Paragraph("x " * 900)], "auto", "one", limit=12).slots) == 1


def test_more_slots_than_paragraphs():
    r = place("", PARAS, 12, "seg0", limit=12)
    assert r.slots == tuple(TEXT_IDX)
    assert "7 paragraphs" in r.fallback


paragraphs = st.lists(st.builds(Paragraph, text=st.text(min_size=0, max_size=30),
                                kind=st.sampled_from(["paragraph", "heading"])), max_size=12)


@given(st.text(), paragraphs, st.one_of(st.just("auto"), st.integers(0, 12)), st.sampled_from(["seg0", "one"]),
       st.integers(0, 12))
def test_any_answer_gives_valid_slots(answer, paras, count, numbering, limit):
    index_map = [i for i, p in enumerate(paras) if not p.is_heading]
    r = place(answer, paras, count, numbering, limit=limit, index_map=index_map if numbering == "one" else None)
    allowed = {i for i, p in enumerate(paras) if not p.is_heading and p.text.strip()}
    assert set(r.slots) <= allowed
    assert len(set(r.slots)) == len(r.slots)
    assert list(r.slots) == sorted(r.slots)
    if count != "auto":
        assert len(r.slots) == min(count, len(allowed))
    else:
        assert len(r.slots) <= min(limit, max(1, (len(allowed) + 1) // 2))


@given(st.text())
def test_tag_answers_with_arbitrary_noise(noise):
    answer = f"{noise}<Seg3>{noise}<Seg 1>"
    r = place(answer, PARAS, 2, "seg0", limit=10)
    assert len(r.slots) == 2 and set(r.slots) <= set(TEXT_IDX)
