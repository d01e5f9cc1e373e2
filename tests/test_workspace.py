"""The editor's saved articles: atomic bundles with history, pictures copied in by content."""
import json
import shutil
from pathlib import Path

import pytest

from composer.article import Article, Candidate, Figure, ImageRef, Paragraph
from composer.images import load_image
from composer.planner.history import History
from composer.workspace import Workspace, WorkspaceError, history_from_versions, history_versions

ROOT = Path(__file__).resolve().parent.parent
CAT, COFFEE = ROOT / "assets/library/cat.jpg", ROOT / "assets/library/coffee.jpg"


def ref(path: Path) -> ImageRef:
    return load_image(path).ref


def article(text: str, image: Path | None = None, candidates=()) -> Article:
    blocks = [Paragraph(text)]
    if image is not None:
        blocks.append(Figure(ref(image), "a caption", "a caption", "upload",
                             tuple(Candidate(ref(c), 0.5) for c in candidates)))
    return Article("Title", tuple(blocks))


def test_history_round_trips_through_its_versions():
    h = History(article("one"))
    for text in ("two", "three", "four"):
        h.push(article(text))
    h.undo()
    h.undo()
    past, current, future = history_versions(h)
    assert [a.blocks[0].text for a in past] == ["one"]
    assert current.blocks[0].text == "two"
    assert [a.blocks[0].text for a in future] == ["three", "four"]
    assert h.current.blocks[0].text == "two" and h.can_redo  # the writer's history is untouched
    again = history_from_versions(past, current, future)
    assert history_versions(again) == (past, current, future)


def test_save_and_load_keep_the_article_its_history_and_its_pictures(tmp_path):
    uploads = tmp_path / "upload-cache"
    uploads.mkdir()
    photo = Path(shutil.copy(CAT, uploads / "cat.jpg"))
    ws = Workspace(tmp_path / "data")
    aid = ws.create()
    first = ws.adopt(aid, article("one", photo, candidates=[photo, COFFEE]))
    assert Path(first.figures[0].image.path).parent == ws.folder(aid) / "images"
    h = History(first)
    h.push(ws.adopt(aid, article("two", photo)))
    h.undo()
    ws.save(aid, h)
    shutil.rmtree(uploads)  # the upload cache is cleaned: the article does not care

    stored = json.loads((ws.folder(aid) / "article.json").read_text())
    assert str(tmp_path) not in json.dumps(stored)  # relative paths only
    loaded = Workspace(tmp_path / "data").load(aid)  # as after a server restart
    assert loaded.current.blocks[0].text == "one" and loaded.can_redo and not loaded.can_undo
    fig = loaded.current.figures[0]
    assert Path(fig.image.path).read_bytes() == CAT.read_bytes()
    assert [c.image.sha256 for c in fig.candidates] == [ref(CAT).sha256, ref(COFFEE).sha256]
    assert loaded.redo().blocks[0].text == "two"
    assert len(list((ws.folder(aid) / "images").iterdir())) == 2  # one file per content
    assert [a.id for a in ws.list()] == [aid]


def test_a_picture_whose_file_is_gone_leaves_an_empty_slot(tmp_path):
    gone = tmp_path / "gone.jpg"
    shutil.copy(CAT, gone)
    a = article("one", gone)
    gone.unlink()
    ws = Workspace(tmp_path / "data")
    aid = ws.create()
    adopted = ws.adopt(aid, a)
    assert adopted.figures[0].image is None and adopted.figures[0].caption == "a caption"


@pytest.mark.parametrize("bad", ["../../etc", "0" * 31, "/tmp/x", "G" * 32, None])
def test_ids_from_a_browser_are_never_paths(tmp_path, bad):
    ws = Workspace(tmp_path)
    with pytest.raises(WorkspaceError):
        ws.load(bad)
    assert not ws.exists(bad)


def test_a_stored_path_outside_the_article_is_refused(tmp_path):
    ws = Workspace(tmp_path)
    aid = ws.create()
    ws.save(aid, History(ws.adopt(aid, article("one", CAT))))
    path = ws.folder(aid) / "article.json"
    data = json.loads(path.read_text())
    data["blocks"][1]["image"]["path"] = "../../../../etc/passwd"
    path.write_text(json.dumps(data))
    history = ws.folder(aid) / "history.json"
    versions = json.loads(history.read_text())
    versions["current"] = data
    history.write_text(json.dumps(versions))
    with pytest.raises(WorkspaceError, match="outside"):
        ws.load(aid)


def test_a_failed_write_leaves_the_previous_version(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    aid = ws.create()
    ws.save(aid, History(article("one")))
    import composer.workspace as workspace

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(workspace.os, "replace", broken)
    with pytest.raises(workspace.SaveError):  # a WorkspaceError with one plain line
        ws.save(aid, History(article("two")))
    monkeypatch.undo()
    assert ws.load(aid).current.blocks[0].text == "one"
    assert sorted(p.name for p in ws.folder(aid).iterdir()) == ["article.json", "history.json", "images"]


def test_the_browser_secret_outlives_a_restart(tmp_path):
    first = Workspace(tmp_path).browser_secret()
    assert len(first) == 32 and Workspace(tmp_path).browser_secret() == first
    assert (tmp_path / ".browser-secret").stat().st_mode & 0o077 == 0
