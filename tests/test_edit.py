"""Every edit operation on a small article, with a scripted model."""
import pytest

from composer.article import Article, Candidate, Figure, ImageRef, Paragraph
from composer.planner.edit import (
    EditError,
    add_figure,
    delete_block,
    expand,
    insert_paragraph,
    remove_figure,
    rewrite,
    run_edit,
    search_figure,
    set_caption,
    shorten,
    swap_figure,
    update_text,
)
from composer.planner.history import History
from composer.testing import ScriptedModel


def ref(n):
    return ImageRef(sha256=f"{n:064x}", path=f"/lib/{n}.jpg")


CANDS = tuple(Candidate(ref(n), 1 - n / 10) for n in (1, 2, 3))
ARTICLE = Article("T", (
    Paragraph("Intro", "heading", 2),
    Paragraph("The café opens at seven."),
    Figure(ref(1), "a café", "a café", "library", CANDS),
    Paragraph("Chelsea the cat sleeps on the window seat."),
    Figure(ref(2), "a cat", "a cat", "library", (Candidate(ref(2), 0.9), Candidate(ref(1), 0.8))),
    Paragraph("Regulars are greeted by name."),
), {"request": {"language": "en"}})


def model(edit="A better paragraph.\n\nAnd a second one."):
    return ScriptedModel("", edit=edit)


@pytest.mark.parametrize("op", [rewrite, expand])
def test_text_edits_stream_and_splice(op):
    m = model("A better paragraph.\n\nAnd a second one." if op is rewrite else
              "A better paragraph about the cat.\n\nAnd a second one, longer than the first.")
    events = list(op(ARTICLE, 3, m, instruction="more vivid", materials="She is a tabby."))
    assert any(e.kind == "text" for e in events)
    new = events[-1].data["article"]
    assert [b.text for b in new.blocks[3:5]] == m.answers["edit"].split("\n\n")
    assert new.blocks[:3] == ARTICLE.blocks[:3] and new.blocks[5:] == ARTICLE.blocks[4:]
    prompt = m.prompts[-1].turns[-1].text
    assert "Chelsea" in prompt and "more vivid" in prompt
    assert "She is a tabby." in prompt


def test_unusable_edit_answer_changes_nothing():
    with pytest.raises(EditError, match="unchanged"):
        run_edit(rewrite(ARTICLE, 1, model(edit="   ")))
    with pytest.raises(EditError):
        run_edit(rewrite(ARTICLE, 0, model()))  # a heading
    with pytest.raises(EditError):
        run_edit(rewrite(ARTICLE, 2, model()))  # a figure


def test_insert_before_after_and_empty_outline():
    new = run_edit(insert_paragraph(ARTICLE, 1, "after", "the espresso machine", model(edit='"Inserted."')))
    # after paragraph 1 comes its figure, then the new paragraph
    assert isinstance(new.blocks[2], Figure) and new.blocks[3].text == "Inserted."
    new = run_edit(insert_paragraph(ARTICLE, 1, "before", "opening", model(edit="Inserted.")))
    assert new.blocks[1].text == "Inserted." and new.blocks[2].text == ARTICLE.blocks[1].text
    with pytest.raises(EditError, match="outline is empty"):
        run_edit(insert_paragraph(ARTICLE, 1, "after", "  ", model()))


def test_delete_and_update_text():
    new = delete_block(ARTICLE, 3)
    assert len(new.blocks) == len(ARTICLE.blocks) - 1 and all(
        getattr(b, "text", "") != ARTICLE.blocks[3].text for b in new.blocks)
    assert update_text(ARTICLE, 1, " Edited. ").blocks[1].text == "Edited."
    assert len(update_text(ARTICLE, 1, "").blocks) == len(ARTICLE.blocks) - 1


def test_picture_edits():
    assert len(remove_figure(ARTICLE, 2).figures) == 1
    swapped = swap_figure(ARTICLE, 2, 2)
    assert swapped.blocks[2].image == ref(3)
    with pytest.raises(EditError, match="already used"):
        swap_figure(ARTICLE, 2, 1)  # ref(2) is the other figure's picture
    assert set_caption(ARTICLE, 2, "new").blocks[2].caption == "new"


class Library:
    def candidates(self, caption, k, exclude_hashes=()):
        return [Candidate(ref(n), 0.5) for n in range(1, 9) if ref(n).sha256 not in exclude_hashes][:k]


def test_search_and_add_figure_never_reuse_a_picture():
    new = search_figure(ARTICLE, 2, "espresso", Library())
    assert new.blocks[2].image == ref(1) and new.blocks[2].caption == "a café"  # its own picture may stay
    assert all(c.image != ref(2) for c in new.blocks[2].candidates)
    added = run_edit(add_figure(ARTICLE, 5, model(), library=Library(), caption="regulars"))
    assert added.blocks[6].image == ref(3) and added.blocks[6].caption == "regulars"
    with pytest.raises(EditError, match="already has a picture"):
        run_edit(add_figure(ARTICLE, 1, model(), library=Library()))
    m = ScriptedModel("", caption="A barista greets a regular")
    added = run_edit(add_figure(ARTICLE, 5, m, library=Library()))
    assert added.blocks[6].caption == "A barista greets a regular"


def test_history_undo_redo():
    h = History(ARTICLE)
    a1 = h.push(delete_block(ARTICLE, 3))
    a2 = h.push(remove_figure(a1, 2))
    assert h.undo() == a1 and h.undo() == ARTICLE and not h.can_undo
    assert h.redo() == a1
    h.push(update_text(a1, 1, "x"))
    assert not h.can_redo and h.undo() == a1
    assert a2 != a1


def test_shorten_keeps_one_paragraph_without_the_models_notes_or_stray_quotes():
    long = ("Chelsea the cat, a tabby from the flat upstairs, sleeps on the window seat every morning "
            "while the regulars drink their coffee.")
    article = Article(ARTICLE.title, (*ARTICLE.blocks[:3], Paragraph(long), *ARTICLE.blocks[4:]), ARTICLE.metadata)
    answer = ('"The café opens at seven and the cat sleeps on the seat.\n\n'
              'Your edit: "The article is here and it is shorter now."')
    new = run_edit(shorten(article, 3, model(edit=answer)))
    assert new.blocks[3] == Paragraph("The café opens at seven and the cat sleeps on the seat.")
    assert len(new.blocks) == len(article.blocks)
    for answer in ('Shortened: "The cat sleeps on the seat."', '“The cat sleeps on the seat.”',
                   'The cat sleeps on the seat."', 'Here is the shortened paragraph:\n\nThe cat sleeps on the seat.'):
        new = run_edit(shorten(article, 3, model(edit=answer)))
        assert new.blocks[3] == Paragraph("The cat sleeps on the seat."), answer
    # A quotation inside the text is the writer's: it stays.
    new = run_edit(rewrite(ARTICLE, 3, model(edit='The sign says "back at nine" every morning.')))
    assert new.blocks[3].text == 'The sign says "back at nine" every morning.'


def test_rebase_applies_an_edit_to_the_article_as_it_now_is():
    from composer.planner.edit import rebase

    done = run_edit(rewrite(ARTICLE, 3, model(edit="A cat.")))
    meanwhile = set_caption(ARTICLE, 2, "a busy café")
    rebased = rebase(ARTICLE, done, meanwhile)
    assert rebased.blocks[3].text == "A cat." and rebased.blocks[2].caption == "a busy café"
    assert rebase(ARTICLE, done, update_text(ARTICLE, 3, "By hand.")) is None


def test_search_library_keeps_the_caption_the_writer_wrote():
    new = search_figure(ARTICLE, 2, "espresso crema", Library())
    assert new.blocks[2].caption == "a café"  # the writer's caption stays; the search words are the query
    assert new.blocks[2].query == "espresso crema"
    empty = ARTICLE.with_blocks([*ARTICLE.blocks[:2], Figure(None, ""), *ARTICLE.blocks[3:]])
    assert search_figure(empty, 2, "espresso crema", Library()).blocks[2].caption == "espresso crema"


def test_use_picture_puts_one_of_the_writers_photos_in_a_slot():
    from composer.planner.edit import use_picture

    photo = ImageRef("f" * 64, "/uploads/garden.jpg")
    new = use_picture(ARTICLE, 2, photo, "upload")
    assert new.blocks[2].image == photo and new.blocks[2].source == "upload"
    assert new.blocks[2].caption == "a café"
    with pytest.raises(EditError, match="already used"):
        use_picture(ARTICLE, 2, ref(2), "library")


def test_a_model_edit_that_does_not_do_what_was_asked_changes_nothing():
    with pytest.raises(EditError, match=r"shorter version was not shorter \(10 words against 8\)"):
        run_edit(shorten(ARTICLE, 3, model(edit="Chelsea the cat sleeps all day on the window seat.")))
    with pytest.raises(EditError, match="longer version added nothing"):
        run_edit(expand(ARTICLE, 3, model(edit="Chelsea sleeps.")))
    with pytest.raises(EditError, match="back unchanged"):
        run_edit(rewrite(ARTICLE, 3, model(edit="Chelsea the cat sleeps on the window seat.")))


def test_a_model_edit_keeps_to_the_materials_and_never_talks_about_the_article():
    article = Article(ARTICLE.title, ARTICLE.blocks, {"request": {
        "language": "en", "title": "A morning at the café",
        "materials": "Chelsea is a tabby cat. She sleeps on the window seat. She has her own water bowl by the door."}})
    answer = ("Chelsea the tabby cat sleeps on the window seat. She has her own water bowl by the door. "
              "She was born in Paris in 2011. I hope you enjoy this expanded paragraph.")
    new = run_edit(expand(article, 3, model(edit=answer)))
    assert new.blocks[3].text == ("Chelsea the tabby cat sleeps on the window seat. "
                                  "She has her own water bowl by the door.")
