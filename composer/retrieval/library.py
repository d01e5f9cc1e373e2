"""An image library: a folder of pictures, a SQLite file of their metadata and vectors, and a
FAISS index over those vectors (a cache of SQLite, rebuilt when it does not match).

`sync()` makes the database match the folder: it embeds new and changed files only, drops removed
ones, embeds identical content once, and skips unreadable files with a reason. Every batch is one
SQLite transaction (metadata and vectors together), so a sync killed at any moment leaves a
library that opens, is consistent, and resumes where it stopped.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from composer.article import Candidate, ImageRef
from composer.retrieval.decode import Decoded, Failed, decode_batches
from composer.retrieval.encoder import ImageTextEncoder, l2_normalize
from composer.retrieval.errors import LibraryError
from composer.retrieval.index import VectorIndex
from composer.retrieval.registry import load_encoder
from composer.retrieval.scan import Skipped, scan_folder
from composer.retrieval.store import ImageRow, Store, now
from composer.runtime import run_in_background

log = logging.getLogger(__name__)

DB_NAME = ".composer-library.sqlite"
INDEX_SUFFIX = ".faiss"
BATCH_SIZE = 8  # EfficientNet-Lite0 and ViT-B-32 are fastest per image at 4-8 on a small CPU


@dataclass(frozen=True)
class SyncProgress:
    done: int
    total: int
    path: str  # the last file handled


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0  # encoder forward passes actually run (copies and touched files cost none)
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"added {self.added}, updated {self.updated}, removed {self.removed}, "
            f"skipped {len(self.skipped)} (unchanged {self.unchanged}, embedded {self.embedded})"
        )


ProgressCallback = Callable[[SyncProgress], None]


def _stack(pixels: list[torch.Tensor]) -> torch.Tensor:
    """torch.stack of CPU tensors, done by numpy: torch's parallel copy wakes the intra-op thread
    pool and on a busy 2-core machine cost ~12 ms a batch of eight against numpy's ~0.5 ms."""
    try:
        return torch.from_numpy(np.stack([p.numpy() for p in pixels]))
    except (TypeError, RuntimeError):  # not a CPU tensor numpy can view (GPU, grad, bfloat16)
        return torch.stack(pixels)


def default_db_path(folder: Path) -> Path:
    return folder / DB_NAME


class ImageLibrary:
    """`encoder` is an encoder, a spec string, or None for the one the library was built with
    (`auto` for a new library). Searching with an encoder other than the library's raises
    LibraryError; syncing with one re-embeds every image."""

    def __init__(
        self,
        folder: str | Path,
        db: str | Path | None = None,
        encoder: ImageTextEncoder | str | None = None,
        must_exist: bool = False,
    ):
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise LibraryError(f"{folder}: no such folder")
        self.db_path = Path(db).expanduser().resolve() if db else default_db_path(self.folder)
        if must_exist and not self.db_path.is_file():
            raise LibraryError(f"{self.folder} has no library yet: run `python -m composer index {folder}` first")
        self.index_path = self.db_path.with_name(self.db_path.name.removesuffix(".sqlite") + INDEX_SUFFIX)
        self.store = Store(self.db_path)
        self._encoder_arg = encoder
        self._encoder: ImageTextEncoder | None = encoder if not isinstance(encoder, (str, type(None))) else None
        self._index: VectorIndex | None = None
        self._lock = threading.RLock()

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self.store.close()

    def __enter__(self) -> ImageLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- encoder ---------------------------------------------------------------------------
    @property
    def encoder_name(self) -> str | None:
        """The encoder whose vectors this library holds (None before the first sync)."""
        with self._lock:
            return self.store.get_meta("encoder")

    @property
    def encoder(self) -> ImageTextEncoder:
        if self._encoder is None:
            spec = self._encoder_arg if isinstance(self._encoder_arg, str) else None
            spec = spec or self.store.get_meta("encoder_spec") or "auto"
            self._encoder = load_encoder(spec)
        return self._encoder

    def _search_encoder(self) -> ImageTextEncoder:
        enc = self.encoder
        stored = self.encoder_name
        if stored is not None and stored != enc.name:
            raise LibraryError(
                f"{self.folder} was indexed with {stored}, not {enc.name}: "
                f"search without --encoder, or re-index with --encoder {enc.spec}"
            )
        return enc

    # --- sync ------------------------------------------------------------------------------
    def sync(
        self,
        progress: ProgressCallback | None = None,
        batch_size: int = BATCH_SIZE,
        workers: int | None = None,
    ) -> SyncReport:
        """`progress` is called from the sync's worker thread."""
        # A worker thread at background priority with torch bounded (composer.runtime): an index
        # job in this process, or beside it, cannot take the cores from a generation.
        return run_in_background(lambda stop: self._sync(progress, batch_size, workers, stop), name="library-sync")

    def _sync(self, progress: ProgressCallback | None, batch_size: int, workers: int | None,
              stop: threading.Event) -> SyncReport:
        enc = self.encoder
        report = SyncReport()
        entries, report.skipped = scan_folder(self.folder)
        for s in report.skipped:
            log.warning("skipped %s", s)
        with self._lock:
            self._adopt_encoder(enc)
            rows = self.store.images()
            known = self.store.vector_ids(enc.name)
            on_disk = {e.rel for e in entries}
            removed = [p for p in rows if p not in on_disk]
            if removed:
                self.store.remove_images(removed)
                report.removed = len(removed)
            self._drop_orphans(self._load_index(enc))
            index = self._load_index(enc)  # rebuilt if HNSW had to drop vectors

        todo = []
        for e in entries:
            row = rows.get(e.rel)
            if row and (row.size, row.mtime_ns, row.encoder) == (e.size, e.mtime_ns, enc.name) and row.sha256 in known:
                report.unchanged += 1
            else:
                todo.append(e)
        # Width and height of known content, so copies need no decode.
        dims = {r.sha256: (r.width, r.height) for r in rows.values()}
        done = 0
        batches = decode_batches(
            todo,
            enc.preprocess,
            enc.decode_size,
            is_known=known.__contains__,
            batch_size=batch_size,
            workers=workers or min(4, os.cpu_count() or 1),
        )
        for batch in batches:
            if stop.is_set():  # interrupted: what is written stays, the index is saved below
                break
            self._write_batch(enc, batch, rows, known, dims, index, report)
            done += len(batch)
            if progress:
                progress(SyncProgress(done, len(todo), str(batch[-1].entry.path)))
        with self._lock:
            self._drop_orphans(index)
            index = self._load_index(enc)
            if index.should_upgrade():
                index = self._rebuild_index(enc)
            index.save(self.index_path)
        return report

    def _adopt_encoder(self, enc: ImageTextEncoder) -> None:
        if self.store.get_meta("encoder") == enc.name:
            return
        # From here on the library is enc's: files still carrying another encoder's vector are
        # re-embedded by this sync (or the next, if this one is interrupted).
        with self.store.transaction():
            self.store.set_meta("encoder", enc.name)
            self.store.set_meta("encoder_spec", enc.spec)
            self.store.set_meta("dim", str(enc.dim))
        self._index = None

    def _write_batch(self, enc, batch, rows, known, dims, index: VectorIndex, report: SyncReport) -> None:
        fresh: dict[str, torch.Tensor] = {}
        for r in batch:
            if isinstance(r, Decoded) and r.pixels is not None and r.sha256 not in known:
                fresh.setdefault(r.sha256, r.pixels)
        vectors: dict[str, np.ndarray] = {}
        if fresh:
            out = l2_normalize(enc.encode_pixels(_stack(list(fresh.values()))))
            if out.shape != (len(fresh), enc.dim):
                raise RuntimeError(f"encoder {enc.name} returned {out.shape}, expected ({len(fresh)}, {enc.dim})")
            vectors = dict(zip(fresh, out))
        new_rows: list[ImageRow] = []
        failed: list[str] = []
        for r in batch:
            old = rows.get(r.entry.rel)
            if isinstance(r, Failed):
                report.skipped.append(Skipped(str(r.entry.path), r.reason))
                log.warning("skipped %s: %s", r.entry.path, r.reason)
                if old is not None:  # the file is now unusable: its old vector no longer describes it
                    failed.append(r.entry.rel)
                continue
            if r.pixels is not None:
                dims.setdefault(r.sha256, (r.width, r.height))
            width, height = dims[r.sha256]
            added = old.added if old else now()
            new_rows.append(ImageRow(r.entry.rel, r.sha256, r.entry.size, r.entry.mtime_ns, width, height, enc.name,
                                     added))
            if old is None:
                report.added += 1
            else:
                report.updated += 1
        with self._lock:
            if failed:
                self.store.remove_images(failed)
            ids = self.store.write_batch(enc.name, vectors, new_rows)
            # The index learns of vectors only once they are committed.
            if ids:
                index.add(np.fromiter(ids.values(), dtype=np.int64), np.stack([vectors[s] for s in ids]))
            known.update(ids)
        report.embedded += len(vectors)

    def _drop_orphans(self, index: VectorIndex) -> None:
        orphans = self.store.drop_orphan_vectors()
        if orphans and not index.remove(orphans):
            self._index = None  # HNSW cannot remove: rebuilt from SQLite on next use

    # --- index -----------------------------------------------------------------------------
    def _load_index(self, enc_or_name: ImageTextEncoder | str | None = None) -> VectorIndex:
        if self._index is not None:
            return self._index
        name = self.store.get_meta("encoder")
        dim = int(self.store.get_meta("dim") or 0)
        if name is None:
            self._index = VectorIndex(getattr(enc_or_name, "dim", 1))
            return self._index
        cached = VectorIndex.load(self.index_path, dim) if self.index_path.is_file() else None
        stored_ids = self._stored_ids(name)
        if cached is not None and np.array_equal(np.sort(cached.ids()), stored_ids):
            self._index = cached
        else:
            self._index = self._rebuild_index(name)
            self._index.save(self.index_path)
        return self._index

    def _stored_ids(self, name: str) -> np.ndarray:
        return np.array(self.store.vector_id_list(name), dtype=np.int64)

    def _rebuild_index(self, enc_or_name: ImageTextEncoder | str) -> VectorIndex:
        name = enc_or_name if isinstance(enc_or_name, str) else enc_or_name.name
        dim = int(self.store.get_meta("dim") or 0)
        self._index = VectorIndex.build(dim, self.store.iter_vectors(name, dim), self.store.count_vectors(name))
        return self._index

    # --- queries ---------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return self.store.count_images()

    def ids_for(self, hashes: Iterable[str]) -> set[int]:
        """The index ids of these contents (the ids `search` takes in `exclude`)."""
        with self._lock:
            name = self.store.get_meta("encoder")
            return self.store.ids_for_hashes(hashes, name) if name else set()

    def search(
        self, text_or_vector: str | np.ndarray, k: int = 5, exclude: Collection[int] = ()
    ) -> list[tuple[ImageRef, float]]:
        """The k images nearest a caption or a query vector, best first; never one in `exclude`."""
        if k <= 0:
            return []
        if isinstance(text_or_vector, str):
            query = self._search_encoder().encode_texts([text_or_vector])[0]
        else:
            query = np.asarray(text_or_vector, dtype=np.float32).reshape(-1)
        query = l2_normalize(query)
        exclude = set(int(i) for i in exclude)
        with self._lock:
            index = self._load_index()
            if len(index) == 0:
                return []
            if query.shape[0] != index.dim:
                raise LibraryError(f"query has {query.shape[0]} dimensions, the library {index.dim}")
            # Over-fetch by the excluded count so that filtering still leaves k when it can.
            scores, ids = index.search(query, k + len(exclude))
            hits = [(int(i), float(s)) for i, s in zip(ids, scores) if int(i) not in exclude]
            refs = self.store.refs_for(i for i, _ in hits)
        out = []
        for vid, score in hits:
            row = refs.get(vid)
            if row is None:  # an orphan not yet dropped (sync interrupted): nothing on disk to show
                continue
            out.append((self._ref(row), score))
            if len(out) == k:
                break
        return out

    def candidates(self, caption: str, k: int, exclude_hashes: Iterable[str] = ()) -> list[Candidate]:
        """What the planner asks a library: the k best images for a caption, none it already used."""
        found = self.search(caption, k, exclude=self.ids_for(exclude_hashes))
        return [Candidate(image=ref, score=score) for ref, score in found]

    def _ref(self, row: ImageRow) -> ImageRef:
        return ImageRef(sha256=row.sha256, path=str(self.folder / row.path), width=row.width, height=row.height)

    def check(self) -> list[str]:
        """Consistency problems (empty when healthy): SQLite integrity, files without a vector, an
        index whose ids differ from the database's."""
        with self._lock:
            problems = self.store.integrity_problems()
            name = self.store.get_meta("encoder")
            if name is not None:
                index = self._load_index()
                if not np.array_equal(np.sort(index.ids()), self._stored_ids(name)):
                    problems.append("index ids differ from the database")
            return problems
