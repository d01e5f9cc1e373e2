"""The editor's articles on the server's disk, so that nothing is lost to a page reload, a closed
browser or a restarted server.

    DATA/articles/<id>/history.json    every version: before, current, after (undo / redo)
    DATA/articles/<id>/article.json    the current version alone, image paths relative to the folder
    DATA/articles/<id>/images/<sha256><ext>   every picture any version shows or offers

Every file is written to a temp name and renamed into place, so a crash leaves the old version
or the new one, never half of one. history.json is the unit a save commits (article.json is
written after it, a copy of its current version for readers of one article), so a crash between
the two writes loses no version. A history.json that cannot be read is kept aside, never
overwritten, and the article is taken up from article.json alone. Pictures are stored by content
hash: a version that shows the same photo as the one before costs nothing, and an upload cache or
export folder can be removed without breaking an article. The browser only holds the article's id.
"""
from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from composer.article import Article, Candidate, Figure, ImageRef
from composer.images import is_sha256, sha256_bytes
from composer.planner.history import History

ARTICLES = "articles"
IMAGES = "images"
OWNER = "owner"  # the user (with --auth) an article belongs to
HISTORY_FORMAT = 2  # 1 (no "format"): past and future only, the current version in article.json
_ID = re.compile(r"[0-9a-f]{32}")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
STALE_TMP_S = 15 * 60  # a temp file this old was left by a killed write, not one under way
_DISK_WORDS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
               errno.EROFS: "the data folder is read-only", errno.EACCES: "the data folder cannot be written",
               errno.EPERM: "the data folder cannot be written"}


class WorkspaceError(ValueError):
    """An article id or stored file that cannot be used; the message says which and why."""


class SaveError(WorkspaceError):
    """A change could not be saved (a full disk, a folder that cannot be written): nothing was
    changed, on disk or in the writer's session. The message is one plain line."""

    def __init__(self, exc: OSError):
        words = _DISK_WORDS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        super().__init__(f"The change could not be saved ({words}); the article is as it was.")
        self.errno = exc.errno


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
                            source=block.source if image is not None else "none",
                            generated=block.generated if image is not None else None)
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
        _check_writable(self.articles)
        self._remove_stale_temp_files()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._writer_locks: dict[str, threading.RLock] = {}

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

    def _remove_stale_temp_files(self) -> None:
        """Temp files a killed write left (write_atomic's `.<name>.*.tmp`): removed at start."""
        limit = time.time() - STALE_TMP_S
        for pattern in ("*/.*.tmp", f"*/{IMAGES}/.*.tmp"):
            for path in self.articles.glob(pattern):
                try:
                    if _ID.fullmatch(path.relative_to(self.articles).parts[0]) and path.stat().st_mtime < limit:
                        path.unlink()
                except OSError:
                    pass  # gone already, or not ours to remove

    # --- ids -------------------------------------------------------------------------------
    def create(self, owner: str | None = None) -> str:
        """A new article's id; with `owner` (a logged-in user), the article is theirs alone."""
        article_id = uuid.uuid4().hex
        try:
            (self.articles / article_id / IMAGES).mkdir(parents=True)
            if owner:
                write_atomic(self.articles / article_id / OWNER, owner.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            raise SaveError(exc) from exc
        return article_id

    def owner(self, article_id: str) -> str | None:
        """The user an article belongs to, or None (made without a login)."""
        try:
            return (self.folder(article_id) / OWNER).read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            return None

    def may_open(self, article_id: str, user: str | None) -> bool:
        """Whether `user` may take up the article: its owner may, and anyone when either the
        server has no logins (user None) or the article was made without one."""
        owner = self.owner(article_id)
        return user is None or owner is None or owner == user

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

    def writer_lock(self, article_id: str) -> threading.RLock:
        """Held by a writer (a browser tab) while it reads, changes and saves an article, so that
        the edits of two tabs of one article are applied one after the other."""
        with self._locks_lock:
            return self._writer_locks.setdefault(article_id, threading.RLock())

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

        try:
            return map_images(article, store)
        except OSError as exc:
            raise SaveError(exc) from exc

    # --- save / load -----------------------------------------------------------------------
    def save(self, article_id: str, history: History) -> None:
        """Write every version (history.json, the unit a save commits), then the current one
        alone (article.json). Images must already be adopted. Raises SaveError when the disk
        refuses: then the files are as they were, or (the second write failing) hold the new
        versions whole, which is what load reads."""
        folder = self.folder(article_id)
        if not folder.is_dir():
            raise WorkspaceError(f"no article {article_id}")

        def rel(article: Article) -> dict:
            return map_images(article, lambda r: replace(r, path=_relative(folder, r.path))).to_dict()

        past, current, future = history_versions(history)
        try:
            with self._lock(article_id):
                write_atomic(folder / "history.json", json.dumps(
                    {"format": HISTORY_FORMAT, "past": [rel(a) for a in past], "current": rel(current),
                     "future": [rel(a) for a in future]},
                    ensure_ascii=False).encode("utf-8"))
                text = json.dumps(rel(current), ensure_ascii=False, indent=2)
                write_atomic(folder / "article.json", text.encode("utf-8"))
        except OSError as exc:
            raise SaveError(exc) from exc

    def load(self, article_id: str) -> History:
        return self.load_with_note(article_id)[0]

    def load_with_note(self, article_id: str) -> tuple[History, str]:
        """The article's versions, and a line for the writer when its history could not be read
        ("" when all is well): the broken history.json is then kept aside under a name the line
        gives, and the article is taken up from article.json with nothing to undo."""
        folder = self.folder(article_id)
        path = folder / "history.json"
        versions, problem = None, ""
        try:
            versions = self._read_history(folder, path.read_bytes())
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            problem = _reason(exc)
        if versions is not None and versions[1] is not None:
            return history_from_versions(versions[0], versions[1], versions[2]), ""
        try:
            current = self._read_article(folder, json.loads((folder / "article.json").read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise WorkspaceError(f"no article {article_id}") from None
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise WorkspaceError(f"article {article_id} cannot be read ({_reason(exc)})") from None
        if versions is not None:  # written before history.json held the current version too
            return history_from_versions(versions[0], current, versions[2]), ""
        if not problem:
            return History(current), ""
        aside = path.with_name(f"history.json.broken-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")
        try:
            os.replace(path, aside)
        except OSError:
            return History(current), f"Its undo history could not be read ({problem}); there is nothing to undo."
        return History(current), (f"Its undo history could not be read ({problem}) and was kept aside as "
                                  f"{aside.name}; there is nothing to undo.")

    def _read_history(self, folder: Path, raw: bytes) -> tuple[list[Article], Article | None, list[Article]]:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or not all(isinstance(data.get(k, []), list) for k in ("past", "future")):
            raise ValueError("not a history")
        past = [self._read_article(folder, d) for d in data.get("past", [])]
        future = [self._read_article(folder, d) for d in data.get("future", [])]
        current = self._read_article(folder, data["current"]) if data.get("current") is not None else None
        return past, current, future

    def _read_article(self, folder: Path, data: dict) -> Article:
        if not isinstance(data, dict):
            raise ValueError("not an article")
        root = folder.resolve()

        def absolute(ref: ImageRef) -> ImageRef | None:
            path = (folder / ref.path).resolve()
            if root not in path.parents:  # a stored path must stay inside its article
                raise WorkspaceError(f"picture path {ref.path!r} is outside the article")
            return replace(ref, path=str(path)) if path.is_file() else None

        return map_images(Article.from_dict(data, limited=False), absolute)  # our own files: nothing refused

    def list(self) -> list[ArticleInfo]:
        """Saved articles, most recently changed first."""
        out = []
        for folder in self.articles.iterdir():
            path = folder / "article.json"
            if not _ID.fullmatch(folder.name) or not path.is_file():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                title = data.get("title", "") if isinstance(data, dict) else None
            except (OSError, ValueError, RecursionError):
                continue
            if title is None:
                continue
            out.append(ArticleInfo(folder.name, str(title), path.stat().st_mtime))
        return sorted(out, key=lambda a: a.modified, reverse=True)

    def delete(self, article_id: str) -> None:
        shutil.rmtree(self.folder(article_id), ignore_errors=True)


def _check_writable(folder: Path) -> None:
    """Raise the OSError a save would meet, at start rather than at the writer's first change."""
    fd, probe = tempfile.mkstemp(prefix=".write-probe-", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(probe)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg}"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return " ".join(str(exc).split())[:120] or type(exc).__name__


def _relative(folder: Path, path: str) -> str:
    p = Path(path)
    try:
        return p.relative_to(folder).as_posix()
    except ValueError:
        return path  # not adopted: kept as it is (a library picture the article only offers)
