from hypothesis import given
from hypothesis import strategies as st

from composer.planner.caption import MAX_CHARS, caption_from_paragraph, parse_caption


def test_plain_labelled_and_quoted_answers():
    assert parse_caption("A cat asleep on a café window seat\nMore text") == "A cat asleep on a café window seat"
    assert parse_caption('  Caption: "Espresso pouring into a warm cup"') == "Espresso pouring into a warm cup"
    assert parse_caption('一只猫在窗台上睡觉"，后面的文字', closing_quote='"') == "一只猫在窗台上睡觉"


def test_unusable_answers():
    for bad in ["", "   \n\n", "...", "<Seg3>", "12345"]:
        assert parse_caption(bad) is None


def test_rule_caption_is_first_sentence():
    assert caption_from_paragraph("The rocket lifted off at dawn. Crowds cheered.") == "The rocket lifted off at dawn."
    assert caption_from_paragraph("") == "Illustration"


@given(st.text(), st.sampled_from([None, '"']))
def test_any_answer_gives_none_or_short_caption(answer, quote):
    cap = parse_caption(answer, quote)
    assert cap is None or (0 < len(cap) <= MAX_CHARS and "\n" not in cap)


@given(st.text())
def test_rule_caption_never_empty(paragraph):
    cap = caption_from_paragraph(paragraph)
    assert cap and len(cap) <= MAX_CHARS


def test_caption_keeps_the_first_sentence_of_a_run_on_answer():
    assert parse_caption("Pikolo Espresso Bar opens at seven. The owner pulls the first shot.") == \
        "Pikolo Espresso Bar opens at seven."
    assert parse_caption("Dr. Who") == "Dr. Who"


def test_an_ellipsis_is_not_a_complete_caption():
    assert parse_caption("A little... (name) slept on the window seat") is None
    assert parse_caption("The cat…") is None


def test_a_caption_that_echoes_the_instructions_falls_back():
    from composer.article import Paragraph
    from composer.planner.caption import write_captions
    from composer.planner.prompts import caption_sampling, prompts_for
    from composer.testing import ScriptedModel

    paragraphs = [Paragraph("Chelsea the tabby sleeps on the window seat every morning.")]
    prompts = prompts_for("generic")
    echo = ScriptedModel("", caption="One complete phrase")
    written = list(write_captions(echo, prompts, paragraphs, (0,), "en", {0: "a tabby cat"},
                                  caption_sampling(prompts, 1)))
    assert written[0].caption == "a tabby cat" and written[0].fallback
    # Words of the article or of the photo's description are a caption, not an echo.
    fine = ScriptedModel("", caption="Chelsea the tabby on the window seat")
    written = list(write_captions(fine, prompts, paragraphs, (0,), "en", {0: "a tabby cat"},
                                  caption_sampling(prompts, 1)))
    assert written[0].caption == "Chelsea the tabby on the window seat" and not written[0].fallback
