"""Access between writers on one server (issue 17, case 7): the web framework's file route serves
the pictures a page shows and nothing else of the data folder, and with --auth an article
belongs to the user who made it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from composer.article import Article, Figure, Paragraph
from composer.editor_session import EditorSession
from composer.images import load_image
from composer.shown_files import ShownFiles
from composer.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets/library/cat.jpg"


def article(text: str = "A paragraph.") -> Article:
    return Article("T", (Paragraph(text),))


# --- what the page is handed: pictures, from outside the data folder ---------------------------

def test_a_picture_is_handed_over_from_a_folder_of_its_own_with_the_same_bytes(tmp_path):
    data = tmp_path / "data" / "articles" / "x" / "images"
    data.mkdir(parents=True)
    picture = Path(shutil.copy(CAT, data / "cat.jpg"))
    shown = ShownFiles(tmp_path / "view")
    handed = Path(shown.path(str(picture)))
    assert handed.parent == tmp_path / "view" and handed.suffix == ".jpg"
    assert handed.read_bytes() == picture.read_bytes()
    assert shown.path(str(picture)) == str(handed)  # once per picture, not once per view


@pytest.mark.parametrize("name", ["article.json", "history.json", ".browser-secret", "notes.txt"])
def test_nothing_but_a_picture_is_handed_over(tmp_path, name):
    path = tmp_path / name
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a picture"):
        ShownFiles(tmp_path / "view").path(str(path))


# --- an article belongs to its user ----------------------------------------------------------------

def test_with_auth_an_article_is_its_users_alone(tmp_path):
    ws = Workspace(tmp_path)
    alice = EditorSession(ws)
    alice.user = "alice"
    alice.push(article("hers"))
    aid = alice.article_id
    bob = EditorSession(ws)
    bob.user = "bob"
    assert not bob.resume(aid)  # as if there were no such article
    assert bob.article is None
    again = EditorSession(ws)
    again.user = "alice"
    assert again.resume(aid) and again.article == article("hers")


def test_without_auth_any_session_resumes_by_id(tmp_path):
    ws = Workspace(tmp_path)
    s = EditorSession(ws)
    s.push(article("open"))
    assert EditorSession(ws).resume(s.article_id)


def test_several_users_can_be_given(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("app_module", ROOT / "app.py")
    assert spec and spec.loader
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert app.parse_auth(["alice:one", "bob:two:three"]) == [("alice", "one"), ("bob", "two:three")]
    assert app.parse_auth(None) is None
    with pytest.raises(SystemExit):
        app.parse_auth(["nobody"])


# --- a real server behind --auth ---------------------------------------------------------------------

@pytest.mark.slow
def test_the_file_route_serves_no_article_json_history_or_secret(tmp_path):
    """Before: GET /gradio_api/file=DATA/articles/<id>/article.json (and history.json, and
    .browser-secret) answered 200 to any logged-in user who knew the path."""
    import httpx

    from composer.app_testing import app_server

    data = tmp_path / "data"
    ws = Workspace(data)
    aid = ws.create()
    s = EditorSession(ws)
    s.article_id = aid
    s.push(Article("T", (Paragraph("p"), Figure(load_image(CAT).ref, "a cat"))))
    secret = data / ".browser-secret"
    ws.browser_secret()
    folder = ws.folder(aid)
    picture = next((folder / "images").iterdir())
    with app_server(["--data", str(data), "--auth", "writer:pw"], env={"TMPDIR": str(tmp_path)}) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            assert client.post("login", data={"username": "writer", "password": "pw"}).status_code == 200
            for path in (folder / "article.json", folder / "history.json", secret, picture):
                r = client.get(f"gradio_api/file={path}")
                assert r.status_code == 403, (path.name, r.status_code)
