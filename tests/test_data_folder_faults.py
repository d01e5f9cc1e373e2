"""The editor's data folder when it goes wrong: a history.json that cannot be read, a full disk,
a read-only folder, a crash between two writes, temp files a kill left (issue 17, case 6)."""
from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest

import composer.workspace as workspace_module
from composer.article import Article, Paragraph
from composer.planner.history import History
from composer.workspace import SaveError, Workspace, WorkspaceError, history_versions


def article(text: str) -> Article:
    return Article("Title", (Paragraph(text),))


def texts(history: History) -> tuple[list[str], str, list[str]]:
    past, current, future = history_versions(history)
    return [a.blocks[0].text for a in past], current.blocks[0].text, [a.blocks[0].text for a in future]


def saved(ws: Workspace, *versions: str, undo: int = 0) -> str:
    aid = ws.create()
    h = History(article(versions[0]))
    for v in versions[1:]:
        h.push(article(v))
    for _ in range(undo):
        h.undo()
    ws.save(aid, h)
    return aid


# --- a history.json that cannot be read ---------------------------------------------------------

BROKEN = {
    "nested": "[" * 100_000,
    "nested-inside": '{"past": ' + "[" * 100_000,
    "not-json": "{oops",
    "wrong-shape": '{"past": 5, "future": []}',
    "not-articles": '{"past": [{"x": 1}], "future": []}',
    "a-list": "[]",
    "not-utf8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("content", BROKEN.values(), ids=BROKEN.keys())
def test_a_history_that_cannot_be_read_is_kept_aside_and_the_article_loads(tmp_path, content):
    ws = Workspace(tmp_path)
    aid = saved(ws, "one", "two")
    path = ws.folder(aid) / "history.json"
    raw = content if isinstance(content, bytes) else content.encode()
    path.write_bytes(raw)
    history, note = ws.load_with_note(aid)
    assert texts(history) == ([], "two", [])
    aside = list(ws.folder(aid).glob("history.json.broken-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == raw
    assert aside[0].name in note and "undo" in note and "\n" not in note
    history.push(article("three"))
    ws.save(aid, history)  # the next save does not overwrite the broken file
    assert aside[0].read_bytes() == raw
    assert texts(ws.load(aid)) == (["two"], "three", [])


def test_a_readable_history_leaves_no_note(tmp_path):
    ws = Workspace(tmp_path)
    aid = saved(ws, "one", "two")
    history, note = ws.load_with_note(aid)
    assert texts(history) == (["one"], "two", []) and note == ""
    assert not list(ws.folder(aid).glob("history.json.broken-*"))


def test_an_article_json_nested_too_deeply_is_a_workspace_error_not_a_crash(tmp_path):
    ws = Workspace(tmp_path)
    aid = saved(ws, "one")
    (ws.folder(aid) / "history.json").unlink()
    (ws.folder(aid) / "article.json").write_text("[" * 100_000)
    with pytest.raises(WorkspaceError, match="nested too deeply"):
        ws.load(aid)
    assert ws.list() == []


# --- one atomic unit per version -----------------------------------------------------------------

def test_a_crash_between_the_two_writes_of_a_save_loses_no_version(tmp_path, monkeypatch):
    """past [one], current two, future [three]; then 'four' is pushed and the process dies after
    the first file is written. A reload gives the state before or the state after, whole."""
    ws = Workspace(tmp_path)
    aid = saved(ws, "one", "two", "three", undo=1)
    before = texts(ws.load(aid))
    h = ws.load(aid)
    h.push(article("four"))
    after = texts(h)
    real, calls = workspace_module.write_atomic, []

    def dies_on_the_second_write(path: Path, data: bytes) -> None:
        calls.append(path.name)
        if len(calls) == 2:
            raise SystemExit("killed")
        real(path, data)

    monkeypatch.setattr(workspace_module, "write_atomic", dies_on_the_second_write)
    with pytest.raises(SystemExit):
        ws.save(aid, h)
    monkeypatch.undo()
    assert texts(Workspace(tmp_path).load(aid)) in (before, after)


def test_history_json_written_by_an_older_version_still_loads(tmp_path):
    """Before the version unit, history.json held past and future only; article.json the current."""
    ws = Workspace(tmp_path)
    aid = ws.create()
    folder = ws.folder(aid)
    (folder / "article.json").write_text(json.dumps(article("two").to_dict()))
    (folder / "history.json").write_text(json.dumps({"past": [article("one").to_dict()], "future": []}))
    assert texts(ws.load(aid)) == (["one"], "two", [])


# --- a full disk ---------------------------------------------------------------------------------

def no_space(path: Path, data: bytes) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


def test_a_full_disk_leaves_the_files_as_they_were_and_says_so_plainly(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    aid = saved(ws, "one", "two")
    folder = ws.folder(aid)
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    h = ws.load(aid)
    h.push(article("three"))
    monkeypatch.setattr(workspace_module.os, "fsync", lambda fd: no_space(Path("x"), b""))
    with pytest.raises(SaveError) as info:
        ws.save(aid, h)
    message = str(info.value)
    assert "disk is full" in message and "\n" not in message and "Errno" not in message
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    assert not list(folder.glob(".*.tmp"))  # the temp file of the refused write is gone too


# --- a read-only data folder ---------------------------------------------------------------------

def test_a_data_folder_that_cannot_be_written_is_refused_at_start(tmp_path, monkeypatch):
    (tmp_path / "articles").mkdir()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(workspace_module.tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as info:
        Workspace(tmp_path)
    assert info.value.strerror == "Read-only file system"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever the mode")
def test_a_read_only_data_folder_is_refused_at_start(tmp_path):
    (tmp_path / "articles").mkdir()
    for p in (tmp_path / "articles", tmp_path):
        p.chmod(0o555)
    try:
        with pytest.raises(OSError):
            Workspace(tmp_path)
    finally:
        for p in (tmp_path, tmp_path / "articles"):
            p.chmod(0o755)


# --- temp files a kill left ----------------------------------------------------------------------

def test_temp_files_a_kill_left_are_removed_at_start_and_fresh_ones_kept(tmp_path):
    ws = Workspace(tmp_path)
    aid = saved(ws, "one")
    folder = ws.folder(aid)
    old = [folder / ".history.json.k1ll3d.tmp", folder / ".article.json.x.tmp", folder / "images" / ".ab.jpg.y.tmp"]
    fresh = folder / ".history.json.busy.tmp"
    for p in [*old, fresh]:
        p.write_bytes(b"\0" * 1000)
    an_hour_ago = time.time() - 3600
    for p in old:
        os.utime(p, (an_hour_ago, an_hour_ago))
    Workspace(tmp_path)
    assert not any(p.exists() for p in old)
    assert fresh.exists()
    assert texts(ws.load(aid)) == ([], "one", [])
