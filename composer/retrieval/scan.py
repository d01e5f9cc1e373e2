"""Find the image files under a library folder, naming what is skipped and why.

Symlinked files are followed only when they land inside the folder (a link to /etc/shadow named
cat.jpg must not be indexed); a symlink loop is skipped and named; symlinked folders are never
entered (loops, escapes). A file or folder whose name is not UTF-8 is skipped and named.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
_NOT_UTF8 = "name is not valid UTF-8 (rename it to index it)"


@dataclass(frozen=True)
class FileEntry:
    rel: str  # '/'-separated path relative to the library folder: the key in the database
    path: Path  # absolute
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def scan_folder(root: Path) -> tuple[list[FileEntry], list[Skipped]]:
    root = root.resolve()
    found: list[FileEntry] = []
    skipped: list[Skipped] = []

    def on_error(exc: OSError) -> None:
        skipped.append(Skipped(printable_path(exc.filename), f"cannot read folder ({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        # Hidden folders hold caches and VCS data, not a writer's pictures.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in [d for d in dirnames if not _utf8(d)]:
            dirnames.remove(d)
            skipped.append(Skipped(printable_path(Path(dirpath) / d), f"folder {_NOT_UTF8}"))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / name
            if not _utf8(name):
                skipped.append(Skipped(printable_path(path), f"file {_NOT_UTF8}"))
                continue
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                try:
                    target = path.resolve()
                except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError for a loop
                    skipped.append(Skipped(str(path), "symlink loop"))
                    continue
                if not target.is_relative_to(root):
                    skipped.append(Skipped(str(path), "symlink points outside the library folder"))
                    continue
            try:
                st = path.stat()
            except OSError as exc:
                skipped.append(Skipped(str(path), f"cannot read file ({exc.strerror or exc})"))
                continue
            if not os.path.isfile(path):
                continue
            found.append(FileEntry(rel=rel, path=path, size=st.st_size, mtime_ns=st.st_mtime_ns))
    return found, skipped


def _utf8(name: str) -> bool:
    """Whether a name from the file system is text. Python hands undecodable bytes over as lone
    surrogates, which SQLite, a terminal and a log cannot take."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_path(path: str | Path) -> str:
    """A path as text that prints anywhere: undecodable bytes of its name shown as U+FFFD."""
    return os.fsencode(path).decode("utf-8", errors="replace")
