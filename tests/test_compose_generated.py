"""Issue 20 in the planner and the exports, with the scripted model and the loopback engine:
a slot nothing fills gets a generated picture, labelled as generated wherever it goes."""
import io
import json
import zipfile

import pytest
from PIL import Image

from composer.article import Article, Candidate, Figure, Generated, ImageRef
from composer.export import export_html, read_bundle, write_bundle
from composer.imagegen import load_imagegen
from composer.imagegen.illustrate import Illustrator, next_seed, prompt_for, slot_seed
from composer.imagegen.provenance import DIGITAL_SOURCE_TYPE, LABEL
from composer.imagegen.testing import LoopbackImageServer
from composer.images import decode_image_bytes
from composer.model.remote_pool import RetryPolicy
from composer.planner.edit import set_caption, swap_figure
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from composer.retrieval.encoder import EncoderBase
from composer.testing import ScriptedModel

QUICK = RetryPolicy(attempts=2, total_s=1.0, base_s=0.01, cap_s=0.02)
DRAFT = "\n\n".join([
    "Sputnik 1 was a polished metal sphere that beeped from orbit in 1957.",
    "Yuri Gagarin rode Vostok 1 around the Earth in 1961.",
    "Apollo 11 landed the lunar module Eagle on the Moon in 1969.",
    "The Space Shuttle flew from 1981 to 2011 and carried Hubble into orbit.",
])
REQUEST = ComposeRequest("The space race", style="popular history; vivid", image_count=3)


def model():
    return ScriptedModel(DRAFT, place="1, 2, 3", caption=lambda p: "A picture of " + p.turns[-1].text[-40:])


def run(tmp_path, url, seed=5, library=None, encoder=None, request=REQUEST):
    gen = load_imagegen(f"openai-images:{url}#sd-turbo?size=128x96", retry=QUICK)
    events = list(compose(request, model(), encoder, library, seed=seed,
                          illustrator=Illustrator(gen, tmp_path / "generated")))
    assert events[-1].kind == "done"
    return events, events[-1].data["article"]


def test_every_slot_gets_a_generated_picture_with_its_provenance(tmp_path):
    with LoopbackImageServer() as engine:
        events, article = run(tmp_path, engine.url)
    figures = article.figures
    assert len(figures) == 3 and all(f.image is not None and f.source == "generated" for f in figures)
    for f in figures:
        g = f.generated
        assert g.engine == "openai-images" and g.model == "sd-turbo" and (g.width, g.height) == (128, 96)
        assert "editorial illustration" in g.prompt and "for an article about The space race" in g.prompt
        assert "watermark" in g.negative_prompt and "text" in g.negative_prompt
        assert decode_image_bytes(open(f.image.path, "rb").read()).ref.sha256 == f.image.sha256
    assert len({f.generated.seed for f in figures}) == 3
    assert [e.data["number"] for e in events if e.kind == "generating"] == [1, 2, 3]
    assert article.metadata["imagegen"]["failed"] == []
    assert not engine.refused
    assert all(body["prompt"] == f.generated.prompt for (_, body), f in zip(engine.bodies, figures))


def test_the_same_seed_gives_the_same_requests_and_another_seed_others(tmp_path):
    bodies = []
    for seed in (5, 5, 6):
        with LoopbackImageServer() as engine:
            _, article = run(tmp_path / str(len(bodies)), engine.url, seed=seed)
        bodies.append([b for _, b in engine.bodies])
    assert bodies[0] == bodies[1]
    assert [b["seed"] for b in bodies[0]] != [b["seed"] for b in bodies[2]]


def test_an_engine_that_dies_mid_article_leaves_the_other_slots_filled(tmp_path):
    with LoopbackImageServer(die_after=1) as engine:
        events, article = run(tmp_path, engine.url)
    filled = [f for f in article.figures if f.image is not None]
    assert len(filled) == 1 and filled[0].source == "generated"
    warnings = [e.data["message"] for e in events if e.kind == "warning"]
    failed = article.metadata["imagegen"]["failed"]
    assert [f["where"] for f in failed] == ["after paragraph 2", "after paragraph 3"]
    assert all("no server is available" in f["reason"] for f in failed)
    assert any("no picture was generated after paragraph 2" in w for w in warnings)
    assert len(article.paragraphs) == 4  # the article itself is whole


class Faint(EncoderBase):
    name, min_match = "faint", 0.5


class Library:
    """Two pictures: the first slot's query matches one well, every other query only faintly."""

    def __init__(self, tmp_path):
        self.refs, self.queries = [], []
        for i, colour in enumerate(["red", "blue"]):
            path = tmp_path / f"lib{i}.png"
            Image.new("RGB", (32, 32), colour).save(path)
            self.refs.append(decode_image_bytes(path.read_bytes(), path).ref)

    def candidates(self, query, k, exclude_hashes=()):
        self.queries.append(query)
        good = query == self.queries[0]
        return [Candidate(self.refs[0], 0.9 if good else 0.2), Candidate(self.refs[1], 0.1)][:k]


def test_a_library_match_below_min_match_is_generated_instead(tmp_path):
    with LoopbackImageServer() as engine:
        _, article = run(tmp_path, engine.url, library=Library(tmp_path), encoder=Faint())
    sources = [f.source for f in article.figures]
    assert sources.count("library") == 1 and sources.count("generated") == 2
    for f in article.figures:
        if f.source == "generated":
            assert f.candidates  # the faint library matches stay for the writer to pick


def test_without_an_engine_nothing_changes():
    events = list(compose(REQUEST, model(), None, None, seed=5))
    assert not events[-1].data["article"].figures
    assert "imagegen" not in events[-1].data["article"].metadata


def test_prompts_are_short_english_and_seeds_reproducible():
    p = prompt_for("Eileen Collins at the controls", "The space race", "popular history; vivid",
                   section="A pressure suit: the astronauts")
    assert p.startswith("Eileen Collins at the controls, A pressure suit, editorial illustration")
    assert "popular history tone" in p and "vivid" not in p
    zh = prompt_for("宇航员在驾驶舱", "太空竞赛", query="an astronaut in the cockpit")
    assert zh.startswith("an astronaut in the cockpit") and "太空" not in zh
    assert len(prompt_for("word " * 500, "t")) <= 400
    assert slot_seed(5, 1) == slot_seed(5, 1) != slot_seed(5, 2) != slot_seed(6, 1)
    assert next_seed(slot_seed(5, 1)) != slot_seed(5, 1)


# --- provenance in every export -------------------------------------------------------------------
def generated_article(tmp_path, caption="Sputnik <b>beeps</b>", prompt='a sphere </rdf:li> & "antennas"'):
    path = tmp_path / "g.png"
    Image.new("RGB", (64, 48), "orange").save(path)
    ref = decode_image_bytes(path.read_bytes(), path).ref
    gen = Generated("a1111", "sd_turbo", prompt, 1234, 64, 48, "text, watermark")
    fig = Figure(ImageRef(ref.sha256, str(path), 64, 48), caption, caption, "generated", generated=gen)
    from composer.article import Paragraph

    return Article("Space", (Paragraph("Sputnik beeped."), fig), {"model": "m"})


def xmp_of(data: bytes) -> str:
    return Image.open(io.BytesIO(data)).info["xmp"].decode("utf-8")


def test_exports_label_the_picture_and_carry_the_xmp(tmp_path):
    article = generated_article(tmp_path)
    paths = write_bundle(article, tmp_path / "out")
    [jpeg] = list((tmp_path / "out" / "images").iterdir())
    xmp = xmp_of(jpeg.read_bytes())
    assert f'DigitalSourceType="{DIGITAL_SOURCE_TYPE}"' in xmp and "sd_turbo" in xmp and "seed 1234" in xmp
    assert "&lt;/rdf:li&gt; &amp;" in xmp  # the prompt cannot end the XML early
    with zipfile.ZipFile(paths["zip"]) as z:
        zipped = [n for n in z.namelist() if n.startswith("images/")]
        assert DIGITAL_SOURCE_TYPE in xmp_of(z.read(zipped[0]))
    md = paths["markdown"].read_text()
    assert f"*{LABEL}: Sputnik \\<b\\>beeps\\</b\\>*" in md or f"*{LABEL}: Sputnik" in md
    assert "generated_images:" in md and f'digital_source_type: "{DIGITAL_SOURCE_TYPE}"' in md
    assert 'seed: "1234"' in md and "engine: \"a1111\"" in md
    page = paths["html"].read_text()
    assert f"<figcaption>{LABEL}: Sputnik &lt;b&gt;beeps&lt;/b&gt;</figcaption>" in page and "<b>beeps" not in page
    saved = json.loads(paths["json"].read_text())["blocks"][1]
    assert saved["source"] == "generated" and saved["generated"]["seed"] == 1234
    assert read_bundle(tmp_path / "out").figures[0].generated == article.figures[0].generated


def test_the_writer_rewords_the_caption_but_the_label_stays(tmp_path):
    article = set_caption(generated_article(tmp_path), 1, "")
    assert f"<figcaption>{LABEL}</figcaption>" in export_html(article)
    reworded = set_caption(article, 1, "The first satellite")
    assert f"<figcaption>{LABEL}: The first satellite</figcaption>" in export_html(reworded)
    page = export_html(set_caption(article, 1, "Generated illustration of Sputnik"))
    assert f"<figcaption>{LABEL} of Sputnik</figcaption>" in page  # the writer's own label: not twice


def test_a_library_picture_swapped_in_drops_the_provenance(tmp_path):
    article = generated_article(tmp_path)
    other = tmp_path / "lib.png"
    Image.new("RGB", (40, 40), "teal").save(other)
    ref = decode_image_bytes(other.read_bytes(), other).ref
    fig = article.blocks[1]
    from dataclasses import replace

    article = article.with_blocks((article.blocks[0], replace(fig, candidates=(Candidate(ref, 0.3),))))
    swapped = swap_figure(article, 1, 0).blocks[1]
    assert swapped.source == "library" and swapped.generated is None
    assert LABEL not in export_html(swap_figure(article, 1, 0))


@pytest.mark.parametrize("bad", [{"seed": "7"}, {"prompt": 3}, {"colour": "red"}, {"seed": True}, []])
def test_provenance_read_back_is_checked(tmp_path, bad):
    data = generated_article(tmp_path).to_dict()
    gen = data["blocks"][1]["generated"]
    data["blocks"][1]["generated"] = bad if isinstance(bad, list) else {**gen, **bad}
    with pytest.raises(ValueError):
        Article.from_dict(data)
    data["blocks"][1]["generated"] = None  # "generated" with no provenance is refused too
    with pytest.raises(ValueError):
        Article.from_dict(data)


def test_every_format_labels_a_generated_picture_as_the_html_does(tmp_path):
    """Issue 21 meets issue 20: .docx, PDF and WordPress say "Generated illustration" where the
    page does, read back with readers that are not ours; the .docx's picture keeps its XMP."""
    from docx import Document

    from composer.export.testing import parse_wp_blocks, pdf_text

    paths = write_bundle(generated_article(tmp_path), tmp_path / "out", formats=("md", "html", "docx", "pdf", "wp"))
    doc = Document(str(paths["docx"]))
    captions = [p.text for p in doc.paragraphs if p.style.name == "Caption"]
    assert captions == [f"{LABEL}: Sputnik <b>beeps</b>"], captions
    [picture] = [part for part in doc.part.package.parts if part.partname.startswith("/word/media/")]
    assert DIGITAL_SOURCE_TYPE in xmp_of(picture.blob)
    assert f"{LABEL}: Sputnik <b>beeps</b>" in " ".join(pdf_text(paths["pdf"]).split())
    blocks, outside = parse_wp_blocks(paths["wp"].read_text(encoding="utf-8"))
    [image] = [b for b in blocks if b.name == "core/image"]
    assert f"<figcaption class=\"wp-element-caption\">{LABEL}: Sputnik &lt;b&gt;beeps&lt;/b&gt;</figcaption>" \
        in image.inner_html or f"{LABEL}: Sputnik &lt;b&gt;beeps&lt;/b&gt;" in image.inner_html
