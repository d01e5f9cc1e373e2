from hypothesis import given
from hypothesis import strategies as st

from composer.planner.segment import MAX_BLOCKS, segment


def test_headings_paragraphs_and_debris():
    text = ("# My Title\n\n## The start\nFirst paragraph. <|im_end|>\n\n\n**A bold heading**\n"
            "Second <Seg 3> paragraph.\ufffd\n---\n[UNUSED_TOKEN_145]\n")
    blocks = segment(text, title="My title")
    assert [(b.kind, b.text, b.level) for b in blocks] == [
        ("heading", "The start", 2),
        ("paragraph", "First paragraph.", 0),
        ("heading", "A bold heading", 2),
        ("paragraph", "Second  paragraph.", 0),
    ]


def test_title_line_with_label_is_dropped_but_other_first_lines_kept():
    assert [b.text for b in segment("Title: Cats\nCats are fine.", "Cats")] == ["Cats are fine."]
    assert [b.text for b in segment("Cats and dogs\nText.", "Cats")] == ["Cats and dogs", "Text."]


def test_long_output_is_merged_not_truncated():
    text = "\n".join(f"Sentence number {i}." for i in range(150))
    blocks = segment(text)
    assert len(blocks) <= MAX_BLOCKS
    joined = " ".join(b.text for b in blocks)
    for i in range(150):
        assert f"Sentence number {i}." in joined


@given(st.text())
def test_any_text_segments_without_empty_blocks(text):
    blocks = segment(text, "t")
    assert len(blocks) <= MAX_BLOCKS
    assert all(b.text.strip() for b in blocks)


def test_unfinished_last_sentence_is_dropped():
    from composer.planner.segment import drop_unfinished_sentence as drop

    assert drop("One. Two three. Four five") == "One. Two three."
    assert drop("Para.\n\nFirst sentence here. And then the budget ran out in the middle of") == \
        "Para.\n\nFirst sentence here. And then the budget ran out in the middle of"  # most would go: kept
    assert drop('He said "yes." Then') == 'He said "yes."'
    assert drop("中文句子。还有") == "中文句子。"
    assert drop("It costs 3.5 euros and") == "It costs 3.5 euros and"
    assert drop("A heading without a stop") == "A heading without a stop"


@given(st.text())
def test_dropping_keeps_a_prefix_and_is_idempotent(text):
    from composer.planner.segment import drop_unfinished_sentence as drop

    once = drop(text)
    assert text.rstrip().startswith(once) and drop(once) == once


def test_a_long_broken_last_paragraph_is_dropped_but_not_the_only_one():
    from composer.planner.segment import drop_unfinished_sentence as drop

    broken = "The espresso itself is made using 25 g of coffee in one minute and two seconds – an incredibly"
    assert drop("A finished paragraph.\n\n" + broken) == "A finished paragraph."
    assert drop(broken) == broken
    # A short one too (the small model stopped after "the espresso was"), but not a heading or item.
    assert drop("A finished paragraph.\n\nAs soon as morning started, the espresso was") == "A finished paragraph."
    assert drop("A finished paragraph.\n\n## Closing thoughts") == "A finished paragraph.\n\n## Closing thoughts"
    assert drop("A finished paragraph.\n\n- a list item") == "A finished paragraph.\n\n- a list item"
