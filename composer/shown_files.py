"""The pictures the editor hands its web framework to show, from a folder of their own.

A web framework serves the files it is handed (Gradio copies them into its cache and serves them
from there) and, by path, whatever lies under the folders it is told to allow. The data folder
holds more than pictures (article.json, history.json, the browser secret), so it is never one of
those: each picture a page shows is linked (or copied, across file systems) into this folder
under a name of its own, and handed over from here. Only picture files are ever handed over.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path

PICTURE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


class ShownFiles:
    """`root`: a folder for this server's shown pictures (made if missing; by default one under
    the system's temp folder, which Gradio accepts files from but does not serve by path)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="composer-shown-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        if root is None:  # a folder of our own making goes with the server
            weakref.finalize(self, shutil.rmtree, self.root, True)

    def path(self, source: str) -> str:
        """Where the picture at `source` is handed over from: the same bytes, named by the
        source's path, size and modification time (a picture changed on disk is handed over
        anew). ValueError for anything that is not a picture file."""
        src = Path(source)
        suffix = src.suffix.lower()
        if suffix not in PICTURE_SUFFIXES or not src.is_file():
            raise ValueError(f"{src.name}: not a picture file")
        st = src.stat()
        key = f"{src.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape")
        dest = self.root / f"{hashlib.sha256(key).hexdigest()[:32]}{suffix}"
        with self._lock:
            if not dest.is_file():
                tmp = dest.with_name(f".{dest.name}.tmp")
                tmp.unlink(missing_ok=True)
                try:
                    os.link(src, tmp)
                except OSError:  # another file system, or links not allowed: a copy
                    shutil.copyfile(src, tmp)
                os.replace(tmp, dest)
        return str(dest)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
