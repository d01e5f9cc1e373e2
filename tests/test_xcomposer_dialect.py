"""The official composition protocol, replayed with the reference demo's answer formats."""
import io

from PIL import Image

from composer.article import Article
from composer.images import decode_image_bytes
from composer.planner.edit import expand, insert_paragraph, run_edit
from composer.planner.pipeline import compose
from composer.planner.prompts import XComposerPrompts
from composer.planner.request import ComposeRequest
from composer.testing import ScriptedModel

ARTICLE = "\n".join(["第一段，咖啡馆七点开门。", "第二段，浓缩咖啡的油脂。", "第三段，窗台上的猫。",
                     "第四段，熟客。", "第五段，结尾。"])


def upload(color):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, "PNG")
    return decode_image_bytes(buf.getvalue(), f"{color}.png")


def run(model, request, **kw):
    events = list(compose(request, model, **kw))
    return events, events[-1].data["article"]


def test_prompts_are_the_trained_ones():
    req = ComposeRequest("咖啡馆的早晨", ("开门", "猫"), "素材", language="zh", length=800)
    p = XComposerPrompts()
    w = p.write(req, [Image.new("RGB", (4, 4))])
    assert isinstance(w.turns[-1].parts[0], Image.Image)
    assert w.turns[-1].text.lstrip().startswith("根据以下标题：“咖啡馆的早晨”，创作长文章，字数不少于800字。")
    assert "请用英文写作" not in w.turns[-1].text
    assert "请用英文写作" in p.write(ComposeRequest("Cafe", language="en")).turns[-1].text
    from composer.article import Paragraph

    paras = [Paragraph("a"), Paragraph("b"), Paragraph("c")]
    place = p.place(paras, 2).prompt
    assert place.turns[-1].text == '给定文章"<Seg0> a\n<Seg1> b\n<Seg2> c\n" 根据上述文章，选择适合插入图像的2行'
    assert place.answer_prefix == "适合插入图像的行是"
    assert p.place(paras, "auto").prompt.turns[-1].text.endswith("选择适合插入图像的行")
    cap = p.caption(paras, 2, [(0, "猫")], language="zh")
    assert cap.turns[-1].text == ('给定文章"<Seg0> a\n<Seg1> b\n<Seg2> c\n" '
                                  '现在<Seg0>后插入图像对应的标题是"猫"，给出适合在<Seg2>后插入的图像对应的标题。')
    assert cap.answer_prefix == '标题是"'


def test_reference_answers_compose_with_chained_captions():
    captions = iter(['窗台上睡觉的猫"。', '一杯浓缩咖啡"'])
    model = ScriptedModel(ARTICLE, place="<Seg2>, <Seg1>", caption=lambda p: next(captions), dialect="xcomposer")
    events, article = run(model, ComposeRequest("咖啡馆", language="zh", image_count=2),
                          uploads=[upload("red"), upload("blue")])
    assert not [e for e in events if e.kind == "fallback"]
    assert [f.caption for f in article.figures] == ["窗台上睡觉的猫", "一杯浓缩咖啡"]
    cap_prompts = [p for p in model.prompts if model.step_of(p) == "caption"]
    assert '现在<Seg1>后插入图像对应的标题是"窗台上睡觉的猫"' in cap_prompts[1].turns[-1].text


def test_reference_failure_cases_do_not_crash():
    # A bare <Seg>, no tags at all, and more slots than uploads: each crashed or misbehaved in the demo.
    for place_answer in ["<Seg>", "第二段和第四段", "<Seg9>, <Seg2>, <Seg2>, <Seg3>, <Seg4>"]:
        model = ScriptedModel(ARTICLE, place=place_answer, caption='"', dialect="xcomposer")
        events, article = run(model, ComposeRequest("咖啡馆", language="zh", image_count=3), uploads=[upload("red")])
        assert len(article.figures) == 1
        assert all(f.caption for f in article.figures)


def test_choice_shows_candidate_images_and_uses_scores():
    seen = []

    def scores(prompt, options):
        seen.append(prompt)
        return [0.0, 5.0][: len(options)] + [0.0] * max(0, len(options) - 2)

    model = ScriptedModel(ARTICLE, place="<Seg0>, <Seg3>", caption='猫"', dialect="xcomposer",
                          sees_images=True, choose_scores=scores)
    red, blue = upload("red"), upload("blue")
    _, article = run(model, ComposeRequest("咖啡馆", language="zh", image_count=2), uploads=[red, blue])
    first = seen[0]
    assert first.answer_prefix == "最合适的图是" and len(first.images) == 2
    assert "候选图像包括" in first.turns[-1].text
    assert article.figures[0].image == blue.ref  # option B scored best
    # the second choice shows the image chosen for the first slot in its context, then one candidate
    assert len(seen[1].images) == 2


def test_caption_in_the_article_language_and_an_english_query_for_an_english_encoder():
    from composer.article import Candidate
    from composer.retrieval.encoder import EncoderBase

    def caption(prompt):
        return 'A cat on a sill"' if "英文标题" in prompt.turns[-1].text else '窗台上的猫"'

    model = ScriptedModel("第一段。\n第二段。\n第三段。", place="<Seg1>", caption=caption, dialect="xcomposer")
    red = upload("red")
    asked = []

    class Library:
        def candidates(self, query, k, exclude_hashes=()):
            asked.append(query)
            return [Candidate(red.ref, 0.9)]

    class Enc(EncoderBase):
        name, languages = "english-only", ("en",)

    events, article = run(model, ComposeRequest("咖啡馆", language="zh", image_count=1), encoder=Enc(),
                          library=Library())
    assert [f.caption for f in article.figures] == ["窗台上的猫"]  # shown in the article's language
    assert asked == ["A cat on a sill"]  # the encoder reads the English query
    assert article.blocks[2].query == "A cat on a sill"
    assert Article.from_json(article.to_json()).blocks[2].query == "A cat on a sill"
    assert [e.data["caption"] for e in events if e.kind == "caption"] == ["窗台上的猫"]


def test_xcomposer_edit_prompts():
    from composer.article import Article, Paragraph

    art = Article("T", (Paragraph("甲"), Paragraph("乙")), {"request": {"language": "zh"}})
    m = ScriptedModel("", edit="新的段落。", dialect="xcomposer")
    new = run_edit(expand(art, 0, m, materials="素材"))
    assert m.prompts[-1].turns[-1].text == "扩写以下段落：甲\n基于以下素材：素材"
    assert new.blocks[0].text == "新的段落。"
    run_edit(insert_paragraph(art, 0, "after", "大纲", m))
    assert m.prompts[-1].turns[-1].text == "在以下两段中插入一段。\n第一段：甲\n第二段：乙\n插入段的大纲：大纲"
