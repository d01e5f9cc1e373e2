"""The library's source of truth: one SQLite file holding file metadata and the vectors themselves.

Vectors live as BLOBs beside their metadata so that one transaction commits both: a sync killed
at any moment leaves either a whole batch or none of it. The FAISS index is a cache of this table.
WAL with synchronous=NORMAL survives a killed process without losing a committed batch.
Vector rows are immutable and their ids never reused (AUTOINCREMENT), so an index holding exactly
the same id set as this table holds the same vectors.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.retrieval.errors import LibraryError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    encoder TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (sha256, encoder)
);
CREATE TABLE IF NOT EXISTS images (
    path TEXT PRIMARY KEY,          -- relative to the library folder, '/'-separated
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    encoder TEXT NOT NULL,          -- the encoder whose vector this file has
    added REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
"""


@dataclass(frozen=True)
class ImageRow:
    path: str
    sha256: str
    size: int
    mtime_ns: int
    width: int
    height: int
    encoder: str
    added: float


class Store:
    def __init__(self, db_path: Path):
        self.path = db_path
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: the UI searches from worker threads; the library serialises access.
            self.conn = sqlite3.connect(str(db_path), timeout=30, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"{db_path}: not a usable library database ({exc})") from exc
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) != SCHEMA_VERSION:
            raise LibraryError(f"{db_path}: library schema {version} is not the supported {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    # --- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- reads -----------------------------------------------------------------------------
    def images(self) -> dict[str, ImageRow]:
        rows = self.conn.execute(
            "SELECT path, sha256, size, mtime_ns, width, height, encoder, added FROM images"
        ).fetchall()
        return {r[0]: ImageRow(*r) for r in rows}

    def vector_ids(self, encoder: str) -> dict[str, int]:
        """sha256 -> vector id, for the vectors this encoder wrote."""
        return dict(self.conn.execute("SELECT sha256, id FROM vectors WHERE encoder = ?", (encoder,)).fetchall())

    def iter_vectors(self, encoder: str, dim: int, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        cur = self.conn.execute("SELECT id, vector FROM vectors WHERE encoder = ? ORDER BY id", (encoder,))
        while rows := cur.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            yield ids, vecs

    def vectors_by_id(self, ids: Iterable[int], dim: int) -> dict[int, np.ndarray]:
        ids = list(ids)
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for vid, blob in self.conn.execute(f"SELECT id, vector FROM vectors WHERE id IN ({marks})", chunk):
                out[vid] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return out

    def refs_for(self, ids: Iterable[int]) -> dict[int, ImageRow]:
        """vector id -> one file with that content (the first path, so the choice is stable)."""
        ids = list(ids)
        out: dict[int, ImageRow] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"""SELECT v.id, i.path, i.sha256, i.size, i.mtime_ns, i.width, i.height, i.encoder, i.added
                    FROM vectors v JOIN images i ON i.sha256 = v.sha256 AND i.encoder = v.encoder
                    WHERE v.id IN ({marks}) ORDER BY i.path""",
                chunk,
            ).fetchall()
            for r in rows:
                out.setdefault(r[0], ImageRow(*r[1:]))
        return out

    def ids_for_hashes(self, hashes: Iterable[str], encoder: str) -> set[int]:
        hashes = list(hashes)
        out: set[int] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT id FROM vectors WHERE encoder = ? AND sha256 IN ({marks})", [encoder, *chunk]
                )
            )
        return out

    def vector_id_list(self, encoder: str) -> list[int]:
        """The ids of an encoder's vectors, in id order."""
        return [r[0] for r in self.conn.execute("SELECT id FROM vectors WHERE encoder = ? ORDER BY id", (encoder,))]

    def count_images(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def count_vectors(self, encoder: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM vectors WHERE encoder = ?", (encoder,)).fetchone()[0]

    # --- writes (each a transaction) -------------------------------------------------------
    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def write_batch(self, encoder: str, new_vectors: dict[str, np.ndarray], rows: list[ImageRow]) -> dict[str, int]:
        """Insert vectors and upsert file rows in one transaction; returns sha256 -> new vector id."""
        ids: dict[str, int] = {}
        with self.transaction():
            for sha, vec in new_vectors.items():
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO vectors (sha256, encoder, vector) VALUES (?, ?, ?)",
                    (sha, encoder, np.ascontiguousarray(vec, dtype=np.float32).tobytes()),
                )
                if cur.rowcount and cur.lastrowid is not None:
                    ids[sha] = cur.lastrowid
            self.conn.executemany(
                "INSERT OR REPLACE INTO images (path, sha256, size, mtime_ns, width, height, encoder, added)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.path, r.sha256, r.size, r.mtime_ns, r.width, r.height, r.encoder, r.added) for r in rows],
            )
        return ids

    def remove_images(self, paths: Iterable[str]) -> None:
        with self.transaction():
            self.conn.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in paths])

    def drop_orphan_vectors(self) -> list[int]:
        """Delete vectors no file refers to (content removed or changed, or another encoder's)."""
        with self.transaction():
            orphans = [
                r[0]
                for r in self.conn.execute(
                    """SELECT v.id FROM vectors v WHERE NOT EXISTS (
                           SELECT 1 FROM images i WHERE i.sha256 = v.sha256 AND i.encoder = v.encoder)"""
                )
            ]
            self.conn.executemany("DELETE FROM vectors WHERE id = ?", [(i,) for i in orphans])
        return orphans

    def integrity_problems(self) -> list[str]:
        problems = [r[0] for r in self.conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        missing = self.conn.execute(
            """SELECT COUNT(*) FROM images i WHERE NOT EXISTS (
                   SELECT 1 FROM vectors v WHERE v.sha256 = i.sha256 AND v.encoder = i.encoder)"""
        ).fetchone()[0]
        if missing:
            problems.append(f"{missing} files have no vector")
        return problems


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def now() -> float:
    return time.time()
