"""The claims check travels with the article: computed when composing, recomputed by every
edit, and the one-click rewrite quotes exactly the flagged claims and the materials."""
import pytest

from composer.article import Article, Paragraph
from composer.check import CheckResult
from composer.planner.edit import EditError, keep_to_materials, run_edit, update_text
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.testing import ScriptedModel

REQUEST = ComposeRequest("Morning at the café", outline=("Opening", "The cat"),
                         materials="The café opens at seven. A tabby cat called Miso sleeps there.",
                         image_count=0)
DRAFT = ("The café opens at seven.\n\n"
         "It serves 4,321 cups a week, says Maria Lopez, and Miso sleeps on the sill.")


def flags_of(article: Article) -> CheckResult:
    return CheckResult.from_dict(article.metadata["claims"])


def compose_article(model: ScriptedModel) -> Article:
    events = list(compose(REQUEST, model))
    assert events[-1].kind == "done"
    return events[-1].data["article"]


def test_compose_stores_the_claims_the_materials_do_not_support():
    article = compose_article(ScriptedModel(DRAFT))
    flagged = {(f.block, f.claim) for f in flags_of(article).flags}
    second = next(i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and "4,321" in b.text)
    assert flagged == {(second, "4,321"), (second, "Maria Lopez")}


def test_every_edit_recomputes_the_check():
    article = compose_article(ScriptedModel(DRAFT))
    second = next(i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and "4,321" in b.text)
    fixed = update_text(article, second, "Miso the tabby sleeps on the sill.")
    assert flags_of(fixed).flags == ()
    worse = update_text(fixed, second, "Miso is 19 years old.")
    assert [f.claim for f in flags_of(worse).flags] == ["19"]


def test_keep_to_materials_quotes_the_flagged_claims_and_the_materials():
    model = ScriptedModel(DRAFT, edit="Miso, a tabby cat, sleeps there.")
    article = compose_article(model)
    second = next(i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and "4,321" in b.text)
    new = run_edit(keep_to_materials(article, second, model))
    prompt = model.prompts[-1].turns[-1].text
    assert "4,321" in prompt and "Maria Lopez" in prompt and REQUEST.materials in prompt
    assert new.blocks[second].text == "Miso, a tabby cat, sleeps there."
    assert flags_of(new).flags == ()
    with pytest.raises(EditError, match="nothing to rewrite"):
        run_edit(keep_to_materials(new, second, model))


def test_keep_to_materials_drops_what_the_rewrite_still_invents():
    model = ScriptedModel(DRAFT, edit="Miso sleeps there. It sells 4,321 cups, says Maria Lopez. It rules the sill.")
    article = compose_article(model)
    second = next(i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and "4,321" in b.text)
    new = run_edit(keep_to_materials(article, second, model))
    assert new.blocks[second].text == "Miso sleeps there."  # the claims and the unsupported sentence gone
    assert flags_of(new).flags == ()


def test_keep_to_materials_falls_back_to_the_supported_sentences_of_the_old_paragraph():
    model = ScriptedModel("The café opens at seven. It serves 4,321 cups a week.", edit="It sells 9,999 cups.")
    article = compose_article(model)
    at = next(i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph) and "4,321" in b.text)
    events = list(keep_to_materials(article, at, model))
    assert any(e.kind == "fallback" for e in events)
    new = events[-1].data["article"]
    assert new.blocks[at].text == "The café opens at seven."
    with pytest.raises(EditError, match="edit it by hand"):
        run_edit(keep_to_materials(update_text(new, at, "It sells 4,321 cups."), at, model))
