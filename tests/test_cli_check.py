"""`python -m composer check` as a writer runs it: real files, one real process (the rest run
main() in this process: starting the CLI imports torch, seconds each time)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer.__main__ import main
from composer.article import Article, Paragraph

ROOT = Path(__file__).resolve().parent.parent


def composer(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "composer", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def write_article(tmp_path, paragraphs, materials):
    article = Article("The café", tuple(Paragraph(p) for p in paragraphs),
                      {"request": {"title": "The café", "outline": [], "materials": materials}})
    path = tmp_path / "article.json"
    path.write_text(article.to_json(), encoding="utf-8")
    return path


def test_one_line_per_flag_exit_0(tmp_path):
    path = write_article(tmp_path, ["It opens at 7:00.", "It sold 4,321 cups to Tom Baker.\x1b[J"],
                         "The café opens at 7:00.")
    r = composer("check", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        'paragraph 2, sentence 1: "It sold 4,321 cups to Tom Baker.\\x1b[J" — 4,321 is not in the materials',
        'paragraph 2, sentence 1: "It sold 4,321 cups to Tom Baker.\\x1b[J" — Tom Baker is not in the materials',
    ]
    assert composer("check", tmp_path).stdout == r.stdout  # the bundle folder works too


def test_nothing_flagged_prints_nothing(tmp_path, capsys):
    assert main(["check", str(write_article(tmp_path, ["It opens at 7:00."], "The café opens at 7:00."))]) == 0
    assert capsys.readouterr() == ("", "")


def test_no_materials_one_note(tmp_path, capsys):
    assert main(["check", str(write_article(tmp_path, ["In 2019 it sold 4,321 cups."] * 3, ""))]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and "no materials" in out


@pytest.mark.parametrize("content, message", [
    (None, "cannot read article"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not an article"),
    ('{"blocks": []}', "not an article"),
    ('{"title": "T", "blocks": [{"type": "paragraph"}]}', "not an article"),
    ('{"title": "T", "blocks": [{"type": "paragraph", "text": 5}]}', "not an article"),
    ('{"title": "T", "blocks": [{"type": "video"}]}', "not an article"),
    ('{"title": "T", "metadata": {"request": "x"}, "blocks": []}', "not an article"),
    ('{"format": 99, "title": "T"}', "not an article"),
])
def test_bad_article_one_line_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "article.json"
    if content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_bad_article_exit_2_as_a_process(tmp_path):
    (tmp_path / "article.json").write_text("{not json")
    r = composer("check", tmp_path / "article.json")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_a_deeply_nested_article_is_one_line(tmp_path):
    from composer.cli_check import load_article
    from composer.cli_compose import UsageError

    path = tmp_path / "article.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(UsageError, match="nested too deeply"):
        load_article(path)
