"""Materials-first writing (composer/planner/grounded.py): each part written from its own passages,
unsupported sentences dropped, the writer's notes standing in, the writer told what happened.
The planner's logic with a scripted model; the end-to-end case with the real embedded model."""
import json
from pathlib import Path

import pytest

from composer.article import Paragraph
from composer.check import Grounding, attribution_of
from composer.check.semantic import default_embedder
from composer.planner.grounded import join_passages, plan_parts
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.testing import ScriptedModel

DATA = Path(__file__).parent / "data" / "grounding"


def ladybirds(**kw) -> ComposeRequest:
    d = json.loads((DATA / "ladybirds.json").read_text(encoding="utf-8"))
    return ComposeRequest(d["title"], tuple(d["outline"]), d["materials"], **{"length": 200, "image_count": 0, **kw})


def article_of(events):
    assert events[-1].kind == "done"
    return events[-1].data["article"]


def test_each_passage_goes_to_the_one_part_it_is_about():
    request = ladybirds()
    parts = plan_parts(request, Grounding.of(request.title, request.outline, request.materials, default_embedder()))
    assert [p.point for p in parts] == list(request.outline)
    used = [q.id for p in parts for q in p.passages]
    assert len(used) == len(set(used)) == 10  # every sentence of the notes, once
    about = {p.point: " ".join(p.notes) for p in parts}
    assert "eggs" in about["From egg to adult"] and "pupa" in about["From egg to adult"]
    assert "spend the winter" in about["Surviving the winter"]
    assert "pesticides" in about["Inviting ladybirds into the garden"]


def test_what_the_notes_do_not_support_never_reaches_the_article():
    def part(prompt):
        text = prompt.turns[-1].text
        point = text.split("This part is about: ")[1].split(".\n")[0]
        return {"What ladybirds eat": "Ladybirds - the gardener's small allies! Most species feed on aphids. "
                                      "Their long wings make them deadly to predators.",
                "From egg to adult": "Here is the article you asked for. A female lays clusters of orange or yellow "
                                     "eggs on the undersides of leaves.",
                }.get(point, "Ladybirds were first seen by Sir Alfred Marlow in 1832 in Kent.")
    model = ScriptedModel("", caption="A ladybird", small=True)
    model.answers["write"] = part
    events = list(compose(ladybirds(), model, seed=1))
    article = article_of(events)
    text = "\n".join(p.text for p in article.blocks if isinstance(p, Paragraph))
    assert "Most species feed on aphids." in text and "A female lays clusters" in text
    for invented in ("long wings", "Here is the article", "Alfred Marlow", "1832", "small allies!"):
        assert invented not in text
    # Where nothing the model wrote held, the writer's own sentences stand in.
    assert "In autumn, adults gather in sheltered places" in text
    said = " ".join(e.data["message"] for e in events if e.kind == "warning")
    assert "Kept to your notes: left out 5 sentences your notes do not support" in said
    assert "used your own notes for 4 of 4 parts" in said  # the model kept too little of any part
    sentences, _ = attribution_of(article)
    assert sentences and all(s.status != "unsupported" for s in sentences if s.where != "caption")


def test_the_writer_is_told_when_the_notes_are_shorter_than_the_length_asked():
    events = list(compose(ladybirds(length=600), ScriptedModel("Most species feed on aphids.", small=True)))
    said = [e.data["message"] for e in events if e.kind == "warning"]
    assert any(m.startswith("Your notes support about 195 words (you asked for 600)") for m in said)


def test_a_point_the_notes_say_nothing_about_is_left_out_and_said():
    request = ComposeRequest("Ladybirds", ("What ladybirds eat", "Tax law in Norway"),
                             "Ladybirds eat aphids. Many also eat mites.", length=60, image_count=0)
    events = list(compose(request, ScriptedModel("Ladybirds eat aphids.", small=True)))
    article = article_of(events)
    assert "Tax law" not in " ".join(p.text for p in article.blocks if isinstance(p, Paragraph))
    assert any("Your notes say nothing about “Tax law in Norway”" in e.data["message"]
               for e in events if e.kind == "warning")


def test_a_large_model_writes_as_before_unless_the_request_asks():
    draft = "Ladybirds eat aphids and they are lovely."
    large = ScriptedModel(draft)
    list(compose(ladybirds(), large))
    assert not any("one part of the article" in p.turns[-1].text for p in large.prompts)
    asked = ScriptedModel(draft)
    list(compose(ladybirds(materials_first=True), asked))
    assert any("one part of the article" in p.turns[-1].text for p in asked.prompts)


def test_passages_are_joined_as_sentences_with_nothing_added():
    assert join_passages(["Ladybirds eat aphids", "  Many eat   mites. "]) == "Ladybirds eat aphids. Many eat mites."


@pytest.fixture(scope="module")
def embedded():
    from composer.model import load_model

    return load_model("embedded")


def test_the_embedded_model_on_rich_notes_writes_only_what_they_support(embedded):
    events = list(compose(ladybirds(length=250), embedded, seed=0))
    article = article_of(events)
    sentences, _ = attribution_of(article)
    claims = [s for s in sentences if s.status != "no_claim"]
    assert claims and sum(s.status == "supported" for s in claims) >= 0.9 * len(claims)
    assert not any(s.reason.startswith("talks about the article") for s in sentences)


def test_a_chinese_request_to_the_english_only_model_is_built_from_the_notes_and_says_so(embedded):
    d = json.loads((DATA / "tea-zh.json").read_text(encoding="utf-8"))
    request = ComposeRequest(d["title"], tuple(d["outline"]), d["materials"], length=300, language="zh",
                             image_count=0)
    events = list(compose(request, embedded, seed=0))
    said = [e.data["message"] for e in events if e.kind == "warning"]
    assert any("writes English only" in m and "your own notes" in m for m in said)
    article = article_of(events)
    body = "".join(p.text for p in article.blocks if isinstance(p, Paragraph) and not p.is_heading)
    notes = "".join(d["materials"].split())
    assert body and all(ch in notes or ch in "。，、；：“”" for ch in "".join(body.split()))  # nothing added


def test_a_chinese_request_without_notes_is_refused_before_writing(embedded):
    from composer.model.base import ModelError

    with pytest.raises(ModelError, match="writes English only.*add materials"):
        list(compose(ComposeRequest("西湖龙井", ("产地",), "", language="zh", image_count=0), embedded))
