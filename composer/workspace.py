"""The editor's articles on the server's disk, so that nothing is lost to a page reload, a closed
browser or a restarted server.

    DATA/articles/<id>/article.json    the current version, image paths relative to the folder
    DATA/articles/<id>/history.json    the versions before it and after it (undo / redo)
    DATA/articles/<id>/images/<sha256><ext>   every picture any version shows or offers

Every file is written to a temp name and renamed into place, so a crash leaves the old version
or the new one, never half of one. Pictures are stored by content hash: a version that shows the
same photo as the one before costs nothing, and an upload cache or export folder can be removed
without breaking an article. The browser only holds the article's id.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from composer.article import Article, Candidate, Figure, ImageRef
from composer.images import is_sha256, sha256_bytes
from composer.planner.history import History

ARTICLES = "articles"
IMAGES = "images"
_ID = re.compile(r"[0-9a-f]{32}")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


class WorkspaceError(ValueError):
    """An article id or stored file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class ArticleInfo:
    id: str
    title: str
    modified: float


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers (and a crash) see the old content or the new, never a part."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def map_images(article: Article, fn: Callable[[ImageRef], ImageRef | None]) -> Article:
    """The article with every image reference (figures and their candidates) passed through fn;
    a figure image fn drops leaves an empty slot, a dropped candidate is left out."""
    blocks = []
    for block in article.blocks:
        if isinstance(block, Figure):
            image = fn(block.image) if block.image is not None else None
            candidates = tuple(Candidate(ref, c.score) for c in block.candidates if (ref := fn(c.image)) is not None)
            block = replace(block, image=image, candidates=candidates,
                            source=block.source if image is not None else "none")
        blocks.append(block)
    return article.with_blocks(blocks)


def image_refs(article: Article) -> Iterable[ImageRef]:
    for fig in article.figures:
        if fig.image is not None:
            yield fig.image
        yield from (c.image for c in fig.candidates)


def history_versions(history: History) -> tuple[list[Article], Article, list[Article]]:
    """(versions before, current, versions after) in the order they were made, read by walking
    a copy with History's own undo/redo so the writer's history is left as it is."""
    walk = copy.deepcopy(history)
    current = walk.current
    future = []
    while walk.can_redo:
        future.append(walk.redo())
    for _ in future:
        walk.undo()
    past = []
    while walk.can_undo:
        past.append(walk.undo())
    return past[::-1], current, future


def history_from_versions(past: list[Article], current: Article, future: list[Article]) -> History:
    """A History holding these versions, positioned at `current`."""
    versions = [*past, current, *future]
    history = History(versions[0])
    for article in versions[1:]:
        history.push(article)
    for _ in future:
        history.undo()
    return history


class Workspace:
    """Articles under `root` (the app's data directory)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.articles = self.root / ARTICLES
        self.articles.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def browser_secret(self) -> str:
        """The key a browser's saved article id is encrypted with, kept with the articles so that
        a restarted server still reads what browsers saved before."""
        path = self.root / ".browser-secret"
        try:
            return path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            pass
        import secrets

        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(16))
        os.replace(path.with_suffix(".tmp"), path)
        return path.read_text(encoding="ascii").strip()

    # --- ids -------------------------------------------------------------------------------
    def create(self) -> str:
        article_id = uuid.uuid4().hex
        (self.articles / article_id / IMAGES).mkdir(parents=True)
        return article_id

    def folder(self, article_id: str) -> Path:
        """The article's folder. The id comes from a browser, so it is checked to be one of ours
        (32 hex digits), never a path."""
        if not isinstance(article_id, str) or not _ID.fullmatch(article_id):
            raise WorkspaceError(f"not an article id: {str(article_id)[:40]!r}")
        return self.articles / article_id

    def exists(self, article_id: str) -> bool:
        try:
            return (self.folder(article_id) / "article.json").is_file()
        except WorkspaceError:
            return False

    def _lock(self, article_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(article_id, threading.Lock())

    # --- images ----------------------------------------------------------------------------
    def _store_image(self, folder: Path, ref: ImageRef) -> ImageRef | None:
        """Copy a picture into the article's folder once (by content hash); None if its file is gone.

        The stored name is the hash of the bytes copied, computed here: `ref.sha256` may come
        from an article.json someone else wrote ("../../etc/x"), and is never a file name."""
        images = folder / IMAGES
        src = Path(ref.path)
        if images in src.parents and is_sha256(src.stem):
            return ref if ref.sha256 == src.stem else replace(ref, sha256=src.stem)
        suffix = src.suffix.lower() if src.suffix.lower() in _IMAGE_SUFFIXES else ".img"
        try:
            data = src.read_bytes()
        except OSError:
            return None
        digest = sha256_bytes(data)
        dest = images / f"{digest}{suffix}"
        if not dest.is_file():
            write_atomic(dest, data)
        return replace(ref, sha256=digest, path=str(dest))

    def adopt(self, article_id: str, article: Article) -> Article:
        """The article with every picture copied into its folder and pointing there: from now on
        it does not depend on an upload cache, an export folder or a moved library."""
        folder = self.folder(article_id)
        (folder / IMAGES).mkdir(parents=True, exist_ok=True)
        known: dict[str, ImageRef | None] = {}

        def store(ref: ImageRef) -> ImageRef | None:
            if ref.path not in known:
                known[ref.path] = self._store_image(folder, ref)
            return known[ref.path]

        return map_images(article, store)

    # --- save / load -----------------------------------------------------------------------
    def save(self, article_id: str, history: History) -> None:
        """Write the current version and its history. Images must already be adopted."""
        folder = self.folder(article_id)
        if not folder.is_dir():
            raise WorkspaceError(f"no article {article_id}")

        def rel(article: Article) -> dict:
            return map_images(article, lambda r: replace(r, path=_relative(folder, r.path))).to_dict()

        past, current, future = history_versions(history)
        with self._lock(article_id):
            write_atomic(folder / "history.json", json.dumps(
                {"past": [rel(a) for a in past], "future": [rel(a) for a in future]},
                ensure_ascii=False).encode("utf-8"))
            # article.json last: it is what marks a saved article.
            text = json.dumps(rel(current), ensure_ascii=False, indent=2)
            write_atomic(folder / "article.json", text.encode("utf-8"))

    def load(self, article_id: str) -> History:
        folder = self.folder(article_id)
        try:
            current = self._read_article(folder, json.loads((folder / "article.json").read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise WorkspaceError(f"no article {article_id}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WorkspaceError(f"article {article_id} cannot be read ({exc})") from None
        past, future = [], []
        try:
            data = json.loads((folder / "history.json").read_text(encoding="utf-8"))
            past = [self._read_article(folder, d) for d in data.get("past", [])]
            future = [self._read_article(folder, d) for d in data.get("future", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # the history is a convenience: the article itself is what must survive
        return history_from_versions(past, current, future)

    def _read_article(self, folder: Path, data: dict) -> Article:
        root = folder.resolve()

        def absolute(ref: ImageRef) -> ImageRef | None:
            path = (folder / ref.path).resolve()
            if root not in path.parents:  # a stored path must stay inside its article
                raise WorkspaceError(f"picture path {ref.path!r} is outside the article")
            return replace(ref, path=str(path)) if path.is_file() else None

        return map_images(Article.from_dict(data), absolute)

    def list(self) -> list[ArticleInfo]:
        """Saved articles, most recently changed first."""
        out = []
        for folder in self.articles.iterdir():
            path = folder / "article.json"
            if not _ID.fullmatch(folder.name) or not path.is_file():
                continue
            try:
                title = json.loads(path.read_text(encoding="utf-8")).get("title", "")
            except (OSError, ValueError):
                continue
            out.append(ArticleInfo(folder.name, str(title), path.stat().st_mtime))
        return sorted(out, key=lambda a: a.modified, reverse=True)

    def delete(self, article_id: str) -> None:
        shutil.rmtree(self.folder(article_id), ignore_errors=True)


def _relative(folder: Path, path: str) -> str:
    p = Path(path)
    try:
        return p.relative_to(folder).as_posix()
    except ValueError:
        return path  # not adopted: kept as it is (a library picture the article only offers)
