"""The editor session over a data folder that goes wrong (issue 17, case 6): the writer gets
one plain line, and the session moves to a version only once it is saved."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

import composer.workspace as workspace_module
from composer.article import Article, Paragraph
from composer.editor_session import EditorSession
from composer.planner.history import History
from composer.workspace import SaveError, Workspace, history_versions


def article(text: str) -> Article:
    return Article("Title", (Paragraph(text),))


def texts(history: History) -> tuple[list[str], str, list[str]]:
    past, current, future = history_versions(history)
    return [a.blocks[0].text for a in past], current.blocks[0].text, [a.blocks[0].text for a in future]


def no_space(path: Path, data: bytes) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


def test_a_history_nested_too_deeply_still_lets_the_article_resume_and_says_so(tmp_path):
    """A history.json nested 100,000 deep: the intact article.json is taken up (the next
    change keeps its id), and the writer is told why there is nothing to undo."""
    ws = Workspace(tmp_path)
    s = EditorSession(ws)
    s.push(article("one"))
    s.push(article("two"))
    aid = s.article_id
    (ws.folder(aid) / "history.json").write_text("[" * 100_000)
    again = EditorSession(ws)
    assert again.resume(aid) and again.article == article("two")
    assert "kept aside as history.json.broken-" in again.resume_note
    assert again.undo() == "Nothing to undo."
    again.push(article("three"))
    assert again.article_id == aid
    third = EditorSession(ws)
    assert third.resume(aid) and third.resume_note == ""  # said once: the broken file is aside now


def test_a_full_disk_changes_neither_the_session_nor_the_files_and_says_so_plainly(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    s = EditorSession(ws)
    s.push(article("one"))
    s.push(article("two"))
    folder = ws.folder(s.article_id)
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    monkeypatch.setattr(workspace_module, "write_atomic", no_space)
    message = s.undo()
    assert message.startswith("⚠️") and "disk is full" in message and "\n" not in message
    assert "Errno" not in message and str(tmp_path) not in message
    assert s.article == article("two")  # the session did not move to a version never saved
    with pytest.raises(SaveError, match="disk is full"):
        s.push(article("three"))
    assert s.article == article("two")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    assert not list(folder.glob(".*.tmp"))
    monkeypatch.undo()
    assert texts(ws.load(s.article_id)) == (["one"], "two", [])
    assert s.undo() == "Undone."  # room again: everything works as before


def test_a_full_disk_during_open_says_so_and_keeps_the_article_held(tmp_path, monkeypatch):
    from composer.export import write_bundle

    ws = Workspace(tmp_path / "data")
    s = EditorSession(ws)
    s.push(article("mine"))
    zipped = write_bundle(article("theirs"), tmp_path / "bundle")["zip"]
    monkeypatch.setattr(workspace_module, "write_atomic", no_space)
    message = s.open_file(zipped)
    assert message.startswith("⚠️") and "disk is full" in message, message
    monkeypatch.undo()
    assert s.article == article("mine")


