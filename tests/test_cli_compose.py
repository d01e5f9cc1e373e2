"""`python -m composer compose` as a writer runs it: real process, real embedded model."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets/examples/cafe-morning.json"
PHOTOS = [ROOT / "assets/library/coffee.jpg", ROOT / "assets/library/cat.jpg"]


def composer(*args, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "composer", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def bad_input_case(tmp_path, request=EXAMPLE, images=()):
    out = tmp_path / "out"
    r = composer("compose", "--request", request, "--out", out, "--images", *images)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in r.stderr
    assert not out.exists()
    return last


def test_missing_title(tmp_path):
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"outline": ["a"]}))
    assert "title" in bad_input_case(tmp_path, req) and str(req) in bad_input_case(tmp_path, req)


def test_unreadable_request(tmp_path):
    assert "cannot read" in bad_input_case(tmp_path, tmp_path / "nope.json")
    req = tmp_path / "broken.json"
    req.write_text("{not json")
    assert "not valid JSON" in bad_input_case(tmp_path, req)


def test_bad_images_are_named(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is text")
    assert "fake.jpg" in bad_input_case(tmp_path, images=[PHOTOS[0], fake])
    truncated = tmp_path / "half.jpg"
    truncated.write_bytes(PHOTOS[0].read_bytes()[:2000])
    msg = bad_input_case(tmp_path, images=[truncated])
    assert "half.jpg" in msg and "truncated" in msg
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert "empty" in bad_input_case(tmp_path, images=[empty])


def test_decompression_bomb(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(bomb)  # 144 megapixels in a few hundred KB
    assert "too large" in bad_input_case(tmp_path, images=[bomb])


@pytest.mark.slow
def test_end_to_end_with_two_photos(tmp_path):
    out = tmp_path / "out"
    r = composer("compose", "--request", EXAMPLE, "--images", *PHOTOS, "--out", out, "--seed", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "==> write" in r.stderr and "==> select" in r.stderr  # progress shown while it works
    article = json.loads((out / "article.json").read_text())
    paragraphs = [b for b in article["blocks"] if b["type"] == "paragraph" and b["kind"] == "paragraph"]
    figures = [b for b in article["blocks"] if b["type"] == "figure"]
    # The small model writes from the notes: the article holds what they support (118 words here).
    materials = json.loads(Path(EXAMPLE).read_text())["materials"]
    assert len(paragraphs) >= 3 and sum(len(p["text"].split()) for p in paragraphs) >= 0.8 * len(materials.split())
    assert len(figures) == 2  # the example asks for two
    assert {f["image"]["sha256"] for f in figures} == {  # both photos, as the bundle holds them
        __import__("hashlib").sha256((out / f["image"]["path"]).read_bytes()).hexdigest() for f in figures}
    assert sorted(u["name"] for u in article["metadata"]["uploads"]) == sorted(p.name for p in map(Path, PHOTOS))
    assert article["metadata"]["model"].startswith("embedded:")
    # What the materials do not support is stored with the article and said after compose.
    from composer.check import CheckResult, summary_line

    said = summary_line(CheckResult.from_dict(article["metadata"]["claims"]),
                        command=f"python -m composer check {out / 'article.json'}")
    assert said in r.stderr
    with zipfile.ZipFile(out / "article.zip") as z:
        names = set(z.namelist())
        md = z.read("article.md").decode()
    assert {"article.md", "article.html", "article.json"} <= names
    for line in md.splitlines():
        if line.startswith("!["):
            rel = line.split("](", 1)[1].split(")", 1)[0]
            assert rel in names and (out / rel).is_file()
    assert md.count("![") == 2
    html = (out / "article.html").read_text()
    assert html.count("data:image/jpeg;base64,") == 2 and "<script" not in html.lower()


@pytest.mark.slow
def test_every_format_from_the_cli(tmp_path):
    """--formats: each file written, printed, in the zip; the Word file and the PDF read back
    (python-docx, poppler) with the article's title, headings and both captions."""
    import docx

    from composer.export.testing import pdf_text

    out = tmp_path / "out"
    r = composer("compose", "--request", EXAMPLE, "--images", *PHOTOS, "--out", out, "--seed", "3", "--quiet",
                 "--formats", "md,html,docx,pdf,wp")
    assert r.returncode == 0, r.stderr[-3000:]
    files = ["article.html", "article.md", "article.docx", "article.pdf", "article.wp.html", "article.json",
             "article.zip"]
    assert r.stdout.split() == [str(out / name) for name in files]
    with zipfile.ZipFile(out / "article.zip") as z:
        assert set(files) - {"article.zip"} <= set(z.namelist())
    article = json.loads((out / "article.json").read_text())
    headings = [b["text"] for b in article["blocks"] if b["type"] == "paragraph" and b["kind"] == "heading"]
    captions = [" ".join(b["caption"].split()) for b in article["blocks"] if b["type"] == "figure" and b["image"]]
    doc = docx.Document(str(out / "article.docx"))
    assert doc.paragraphs[0].style.name == "Title" and doc.paragraphs[0].text == article["title"]
    styled = {(p.style.name, p.text) for p in doc.paragraphs}
    assert all(("Caption", c) in styled for c in captions) and len(doc.inline_shapes) == 2
    assert all(any(s.startswith("Heading") and t == " ".join(h.split()) for s, t in styled) for h in headings)
    pdf = "".join(pdf_text(out / "article.pdf").split())
    assert all("".join(c.split()) in pdf for c in [article["title"], *headings, *captions])


def test_an_unknown_format_is_one_line_before_composing(tmp_path):
    r = composer("compose", "--request", EXAMPLE, "--out", tmp_path / "out", "--formats", "md,odt")
    assert r.returncode == 2 and "==> write" not in r.stderr and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --formats") and "'odt'" in last and "md,html,docx,pdf,wp" in last
    assert not (tmp_path / "out").exists()


def test_output_folder_with_other_files_is_refused_before_composing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = composer("compose", "--request", EXAMPLE, "--out", out)
    assert r.returncode == 2 and "notes.txt" in r.stderr and "==> write" not in r.stderr
    assert (out / "notes.txt").read_text() == "mine"


def test_a_writers_folder_that_looks_like_a_bundle_is_refused_and_untouched(tmp_path):
    out = tmp_path / "out"
    (out / "images" / "holiday").mkdir(parents=True)
    (out / "article.md").write_text("my draft")
    (out / "images" / "beach.jpg").write_bytes(PHOTOS[1].read_bytes())
    (out / "images" / "holiday" / "sunset.jpg").write_bytes(PHOTOS[0].read_bytes())
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = composer("compose", "--request", EXAMPLE, "--out", out)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(out) in last and "Traceback" not in r.stderr
    assert "==> write" not in r.stderr  # refused before composing
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_unwritable_out_is_refused_before_composing_and_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker / "out", Path("/proc/composer-cli-out")):
        r = composer("compose", "--request", EXAMPLE, "--out", out)
        assert r.returncode == 2 and "==> write" not in r.stderr, r.stderr[-2000:]
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and str(out) in last and ".tmp-" not in last


def test_deeply_nested_request_is_one_line_and_exit_2(tmp_path):
    req = tmp_path / "deep.json"
    req.write_text("[" * 100_000)
    msg = bad_input_case(tmp_path, req)
    assert str(req) in msg and "JSON" in msg


def test_progress_numbers_paragraphs_as_the_editor_shows_them():
    """Issue 18, case 7: the CLI said "caption for paragraph 8" and "caption: paragraph 7" of one
    picture; now every line counts body paragraphs as the editor and the check do."""
    from composer.article import Article, Figure, Paragraph
    from composer.cli_compose import _run
    from composer.planner.events import Event

    segmented = Article("T", (Paragraph("Intro", "heading", 2), Paragraph("One."), Paragraph("Two.")))
    done = Article("T", (*segmented.blocks, Figure(None, "a cat")))
    said: list[str] = []
    _run(iter([Event("segments", {"article": segmented}), Event("slots", {"slots": [2]}),
               Event("caption", {"slot": 2, "caption": "a cat"}),
               Event("done", {"article": done, "usage": {"prefill": 1, "decode": 1}})]),
         lambda kind, message: said.append(message))
    assert "pictures after paragraph 2" in said and "caption after paragraph 2: a cat" in said
