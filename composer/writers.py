"""Whose articles are whose: each writer's list of the articles they composed or opened, so that
a writer who opens the editor in another browser (with --auth) or after clearing its storage
finds their articles again, and never sees another writer's.

    DATA/writers/<sha256 of the writer's key>.json   {"articles": [{"id": ..., "deleted": false}, ...]}

A writer's key is their --auth user name, or a random token their browser keeps. Deleting an
article hides it from the list (Undo delete brings it back); its files stay in the workspace.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from composer.workspace import Workspace, WorkspaceError, write_atomic

MAX_ARTICLES = 500  # a writer's list read back from disk is cut here


@dataclass(frozen=True)
class ArticleEntry:
    id: str
    title: str
    modified: float  # when its current version was saved (seconds since the epoch)
    pictures: int


class WriterArticles:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.root = workspace.root / "writers"
        self.root.mkdir(exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, writer: str) -> Path:
        return self.root / f"{hashlib.sha256(writer.encode('utf-8')).hexdigest()}.json"

    def _read(self, writer: str) -> list[dict]:
        try:
            data = json.loads(self._path(writer).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return []
        rows = data.get("articles") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            return []
        out = []
        for row in rows[:MAX_ARTICLES]:
            if isinstance(row, dict) and self.workspace.exists(str(row.get("id"))):  # checked: 32 hex digits, ours
                out.append({"id": row["id"], "deleted": row.get("deleted") is True})
        return out

    def _write(self, writer: str, rows: list[dict]) -> None:
        write_atomic(self._path(writer), json.dumps({"articles": rows[-MAX_ARTICLES:]}).encode("utf-8"))

    def add(self, writer: str, article_id: str) -> None:
        """`article_id` is this writer's (composed, opened or duplicated by them); one already on
        their list stays as it is (a deleted one stays deleted)."""
        with self._lock:
            rows = self._read(writer)
            if all(r["id"] != article_id for r in rows):
                self._write(writer, [*rows, {"id": article_id, "deleted": False}])

    def owns(self, writer: str, article_id: str) -> bool:
        return any(r["id"] == article_id and not r["deleted"] for r in self._read(writer))

    def _mark(self, writer: str, article_id: str, deleted: bool) -> bool:
        with self._lock:
            rows = self._read(writer)
            found = False
            for r in rows:
                if r["id"] == article_id:
                    r["deleted"], found = deleted, True
            if found:
                self._write(writer, rows)
            return found

    def delete(self, writer: str, article_id: str) -> bool:
        """Hide the article from the writer's list; False if it is not theirs."""
        return self._mark(writer, article_id, True)

    def restore(self, writer: str, article_id: str) -> bool:
        return self._mark(writer, article_id, False)

    def list(self, writer: str) -> list[ArticleEntry]:
        """The writer's articles, most recently changed first."""
        out = []
        for row in self._read(writer):
            if row["deleted"]:
                continue
            try:
                path = self.workspace.folder(row["id"]) / "article.json"
                data = json.loads(path.read_text(encoding="utf-8"))
                modified = path.stat().st_mtime
            except (OSError, ValueError, RecursionError, WorkspaceError):
                continue
            blocks = data.get("blocks") if isinstance(data, dict) else None
            pictures = sum(1 for b in blocks if isinstance(b, dict) and b.get("type") == "figure" and b.get("image")
                           ) if isinstance(blocks, list) else 0
            title = data.get("title") if isinstance(data, dict) else None
            out.append(ArticleEntry(row["id"], " ".join(str(title or "Untitled").split())[:120], modified, pictures))
        return sorted(out, key=lambda e: e.modified, reverse=True)
