"""ImageLibrary: sync (add, update, remove, dedupe, bad files), crash safety, search exclusions."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from composer.article import Candidate
from composer.retrieval import ImageLibrary, LibraryError
from composer.retrieval.index import VectorIndex

REPO = Path(__file__).resolve().parents[1]


def make_image(path: Path, seed: int, size: tuple[int, int] = (48, 40), fmt: str | None = None) -> Path:
    """A small picture whose pixels depend on `seed`, so different seeds give different content."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@dataclass
class CountingEncoder:
    """Delegates to a real encoder, counting images it embeds; optionally fails after `fail_after`."""

    inner: object
    fail_after: int | None = None
    embedded: int = 0
    calls: list[int] = field(default_factory=list)

    def __getattr__(self, item):
        return getattr(self.inner, item)

    @property
    def name(self):
        return self.inner.name

    @property
    def spec(self):
        return self.inner.spec

    @property
    def dim(self):
        return self.inner.dim

    @property
    def decode_size(self):
        return self.inner.decode_size

    def preprocess(self, image):
        return self.inner.preprocess(image)

    def encode_pixels(self, pixels):
        if self.fail_after is not None and self.embedded + len(pixels) > self.fail_after:
            raise RuntimeError("encoder died")
        self.embedded += len(pixels)
        self.calls.append(len(pixels))
        return self.inner.encode_pixels(pixels)

    def encode_texts(self, texts):
        return self.inner.encode_texts(texts)


def stored(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "pictures"
    for i in range(5):
        make_image(root / f"img{i}.jpg", seed=i, fmt="JPEG")
    make_image(root / "sub" / "deep.png", seed=99)
    return root


# --- sync --------------------------------------------------------------------------------
def test_sync_adds_every_image_and_second_sync_embeds_nothing(folder, tiny_clip):
    enc = CountingEncoder(tiny_clip)
    with ImageLibrary(folder, encoder=enc) as lib:
        report = lib.sync()
        assert (report.added, report.updated, report.removed, report.skipped) == (6, 0, 0, [])
        assert enc.embedded == 6 and len(lib) == 6
        again = lib.sync()
        assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 6)
        assert enc.embedded == 6
        assert lib.check() == []
    paths = {p for (p,) in stored(folder / ".composer-library.sqlite", "SELECT path FROM images")}
    assert paths == {f"img{i}.jpg" for i in range(5)} | {"sub/deep.png"}
    assert (folder / ".composer-library.faiss").is_file()


def test_sync_updates_changed_files_and_removes_deleted(folder, tiny_clip):
    enc = CountingEncoder(tiny_clip)
    with ImageLibrary(folder, encoder=enc) as lib:
        lib.sync()
        make_image(folder / "img0.jpg", seed=1000, fmt="JPEG")  # new content
        (folder / "img1.jpg").unlink()
        st_ = (folder / "img2.jpg").stat()  # touched, same content
        os.utime(folder / "img2.jpg", ns=(st_.st_atime_ns, st_.st_mtime_ns + 5_000_000_000))
        before = enc.embedded
        report = lib.sync()
        assert (report.added, report.updated, report.removed) == (0, 2, 1)
        assert enc.embedded - before == 1  # only the really changed file
        assert lib.check() == []
        # the old content of img0 and img1's vector are gone from database and index
        assert len(lib.store.vector_ids(tiny_clip.name)) == 5
        assert len(lib._load_index()) == 5


def test_identical_content_is_embedded_once(folder, tiny_clip):
    (folder / "copy-of-img3.jpg").write_bytes((folder / "img3.jpg").read_bytes())
    (folder / "sub" / "another-copy.jpg").write_bytes((folder / "img3.jpg").read_bytes())
    enc = CountingEncoder(tiny_clip)
    with ImageLibrary(folder, encoder=enc) as lib:
        report = lib.sync()
        assert report.added == 8 and enc.embedded == 6
        vector = lib.encoder.encode_images([Image.open(folder / "img3.jpg").convert("RGB")])[0]
        hits = lib.search(vector, k=8)
        assert len(hits) == 6  # one hit per content, not per file
        (folder / "img3.jpg").unlink()
        (folder / "copy-of-img3.jpg").unlink()
        lib.sync()
        assert len(lib._load_index()) == 6  # a copy remains, so the vector stays
        (folder / "sub" / "another-copy.jpg").unlink()
        lib.sync()
        assert len(lib._load_index()) == 5
        assert lib.check() == []


def test_bad_files_are_skipped_and_named_and_the_rest_indexed(folder, tmp_path, tiny_clip):
    good = (folder / "img0.jpg").read_bytes()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "notes.png").write_text("this is not a picture")
    (folder / "garbage.webp").write_bytes(os.urandom(2048))
    Image.new("1", (8000, 7000)).save(folder / "bomb.png")  # 56 megapixels in a few KiB
    outside = make_image(tmp_path / "elsewhere" / "secret.jpg", seed=7, fmt="JPEG")
    (folder / "escape.jpg").symlink_to(outside)
    (folder / "inside-link.jpg").symlink_to(folder / "img4.jpg")  # stays in the folder: indexed
    (folder / "readme.txt").write_text("ignored: not an image extension")
    enc = CountingEncoder(tiny_clip)
    with ImageLibrary(folder, encoder=enc) as lib:
        report = lib.sync()
        reasons = {Path(s.path).name: s.reason for s in report.skipped}
        assert set(reasons) == {"empty.jpg", "truncated.jpg", "notes.png", "garbage.webp", "bomb.png", "escape.jpg"}
        assert reasons["empty.jpg"] == "empty file"
        assert "not an image" in reasons["notes.png"]
        assert "too large" in reasons["bomb.png"]
        assert "outside" in reasons["escape.jpg"]
        assert report.added == 7 and enc.embedded == 6  # 6 pictures + the inside link (a copy)
        assert lib.check() == []


def test_a_symlink_loop_is_skipped_and_named(folder, tiny_clip):
    (folder / "a.jpg").symlink_to("b.jpg")
    (folder / "b.jpg").symlink_to("a.jpg")
    (folder / "self.png").symlink_to("self.png")
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        report = lib.sync()
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"a.jpg", "b.jpg", "self.png"}
    assert all("loop" in reason for reason in reasons.values())
    assert report.added == 6


def test_a_file_that_turns_corrupt_leaves_the_library(folder, tiny_clip):
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        lib.sync()
        (folder / "img0.jpg").write_bytes(b"\xff\xd8\xff broken")
        report = lib.sync()
        assert [Path(s.path).name for s in report.skipped] == ["img0.jpg"]
        assert len(lib) == 5 and len(lib._load_index()) == 5
        assert lib.check() == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped(folder, tiny_clip):
    (folder / "img0.jpg").chmod(0)
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        report = lib.sync()
    assert [Path(s.path).name for s in report.skipped] == ["img0.jpg"]
    assert report.added == 5


def test_progress_callback_reaches_total(folder, tiny_clip):
    seen = []
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        lib.sync(progress=seen.append, batch_size=4)
    assert [p.done for p in seen] == [4, 6] and all(p.total == 6 for p in seen)


def test_changing_the_encoder_re_embeds_and_search_refuses_the_old_one(folder, tiny_clip, tiny_clip_config):
    import open_clip

    other_config = tiny_clip_config.with_name("composer-tiny-clip-b.json")
    other_config.write_text(tiny_clip_config.read_text().replace('"embed_dim": 32', '"embed_dim": 24'))
    open_clip.add_model_config(other_config)
    from composer.retrieval import load_encoder

    other = CountingEncoder(load_encoder("open_clip:composer-tiny-clip-b:none"))
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        lib.sync()
    with ImageLibrary(folder, encoder=other) as lib:
        report = lib.sync()
        assert report.updated == 6 and other.embedded == 6
        assert lib.check() == [] and lib._load_index().dim == 24
        assert len(lib.search("anything", k=3)) == 3
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        with pytest.raises(LibraryError, match="indexed with open_clip:composer-tiny-clip-b:none"):
            lib.search("a cat")
    # Opened without an encoder, the library uses its own.
    with ImageLibrary(folder) as lib:
        assert lib.encoder.name == other.name
        assert len(lib.search("a cat", k=2)) == 2


def test_missing_folder_is_a_library_error(tmp_path):
    with pytest.raises(LibraryError, match="no such folder"):
        ImageLibrary(tmp_path / "nope")
    with pytest.raises(LibraryError, match="no library yet"):
        ImageLibrary(tmp_path, must_exist=True)


def test_db_elsewhere_leaves_the_folder_untouched(folder, tmp_path, tiny_clip):
    db = tmp_path / "libs" / "pictures.sqlite"
    with ImageLibrary(folder, db=db, encoder=tiny_clip) as lib:
        lib.sync()
    assert db.is_file() and (tmp_path / "libs" / "pictures.faiss").is_file()
    assert not any(p.name.startswith(".composer") for p in folder.iterdir())


# --- crash safety ------------------------------------------------------------------------
def test_sync_interrupted_by_an_encoder_error_is_consistent_and_resumes(tmp_path, tiny_clip):
    root = tmp_path / "pictures"
    for i in range(20):
        make_image(root / f"p{i:02d}.jpg", seed=i, fmt="JPEG")
    dying = CountingEncoder(tiny_clip, fail_after=10)
    with ImageLibrary(root, encoder=dying) as lib:
        with pytest.raises(RuntimeError, match="encoder died"):
            lib.sync(batch_size=4)
        assert lib.check() == []
        assert len(lib) == 8  # two whole batches committed, the third never
        assert len(lib.search("x", k=20)) == 8
    resumed = CountingEncoder(tiny_clip)
    with ImageLibrary(root, encoder=resumed) as lib:
        report = lib.sync(batch_size=4)
        assert resumed.embedded == 12 and report.unchanged == 8 and report.added == 12
        assert lib.check() == [] and len(lib._load_index()) == 20


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import open_clip
    open_clip.add_model_config(sys.argv[2])
    from composer.retrieval import ImageLibrary, load_encoder

    class Slow:  # slow enough that the parent's kill lands mid-sync
        def __init__(self, inner):
            self.inner = inner
        def __getattr__(self, item):
            return getattr(self.inner, item)
        def encode_pixels(self, pixels):
            time.sleep(0.05)
            return self.inner.encode_pixels(pixels)

    lib = ImageLibrary(sys.argv[1], encoder=Slow(load_encoder(sys.argv[3])))
    lib.sync(batch_size=2, progress=lambda p: print("progress", p.done, flush=True))
    print("finished", flush=True)
    """
)


def test_sync_killed_with_sigkill_leaves_a_resumable_library(tmp_path, tiny_clip, tiny_clip_spec, tiny_clip_config):
    root = tmp_path / "pictures"
    total = 60
    for i in range(total):
        make_image(root / f"p{i:02d}.jpg", seed=i, fmt="JPEG")
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(root), str(tiny_clip_config), tiny_clip_spec],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith("progress") and int(line.split()[1]) >= 10:
                break
            assert not line.startswith("finished"), "sync finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with ImageLibrary(root, encoder=tiny_clip) as lib:
        assert lib.check() == []
        committed = len(lib)
        assert 10 <= committed < total
        assert len(lib.search("anything", k=total)) == committed
    resumed = CountingEncoder(tiny_clip)
    with ImageLibrary(root, encoder=resumed) as lib:
        report = lib.sync()
        assert resumed.embedded == total - committed and report.unchanged == committed
        assert lib.check() == [] and len(lib) == total


def test_a_stale_or_corrupt_index_file_is_rebuilt_from_the_database(folder, tiny_clip):
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        lib.sync()
        index_path = lib.index_path
    make_image(folder / "late.jpg", seed=500, fmt="JPEG")
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        saved = index_path.read_bytes()
        lib.sync()
    index_path.write_bytes(saved)  # the index from before the last sync: one vector short
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        assert len(lib._load_index()) == 7 and lib.check() == []
    index_path.write_bytes(b"not a faiss index")
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        assert len(lib.search("x", k=10)) == 7


# --- search ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def searchable(tmp_path_factory, tiny_clip):
    root = tmp_path_factory.mktemp("searchable")
    for i in range(12):
        make_image(root / f"s{i:02d}.png", seed=100 + i)
    lib = ImageLibrary(root, encoder=tiny_clip)
    lib.sync()
    yield lib
    lib.close()


def test_search_by_an_images_own_vector_finds_it_first(searchable):
    enc = searchable.encoder
    for i in (0, 5, 11):
        path = searchable.folder / f"s{i:02d}.png"
        vector = enc.encode_images([Image.open(path).convert("RGB")])[0]
        ref, score = searchable.search(vector, k=1)[0]
        assert ref.path == str(path) and Path(ref.path).is_absolute()
        assert score == pytest.approx(1.0, abs=1e-4)
        assert (ref.width, ref.height) == (48, 40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(1, 15), pick=st.sets(st.integers(0, 11), max_size=12), text=st.text(max_size=30))
def test_search_never_returns_excluded_ids(searchable, k, pick, text):
    every = sorted(searchable._load_index().ids())
    exclude = {int(every[i]) for i in pick}
    hits = searchable.search(text, k=k, exclude=exclude)
    hit_ids = searchable.ids_for(ref.sha256 for ref, _ in hits)
    assert not hit_ids & exclude
    assert len(hits) == min(k, 12 - len(exclude))
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


def test_candidates_skip_used_hashes(searchable):
    first = searchable.candidates("a photo", k=3)
    assert len(first) == 3 and all(isinstance(c, Candidate) for c in first)
    used = {c.image.sha256 for c in first}
    second = searchable.candidates("a photo", k=12, exclude_hashes=used)
    assert len(second) == 9 and not used & {c.image.sha256 for c in second}


def test_hnsw_index_answers_like_the_exact_one():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 3010, dtype=np.int64)
    exact = VectorIndex.build(32, [(ids, vectors)], total=len(ids))
    from composer.retrieval import index as index_mod

    hnsw = VectorIndex(32, index_mod._hnsw(32))
    hnsw.add(ids, vectors)
    assert hnsw.is_hnsw and not exact.is_hnsw
    agree = sum(int(hnsw.search(vectors[i], 1)[1][0] == exact.search(vectors[i], 1)[1][0]) for i in range(0, 3000, 30))
    assert agree >= 95
    assert not hnsw.remove([10]) and exact.remove([10]) and len(exact) == 2999


def test_library_switches_to_hnsw_past_the_threshold_and_still_removes(folder, tiny_clip, monkeypatch):
    from composer.retrieval import index as index_mod

    monkeypatch.setattr(index_mod, "HNSW_THRESHOLD", 4)
    with ImageLibrary(folder, encoder=tiny_clip) as lib:
        lib.sync()
        assert lib._load_index().is_hnsw and len(lib._load_index()) == 6
        gone = folder / "img2.jpg"
        gone_vector = lib.encoder.encode_images([Image.open(gone).convert("RGB")])[0]
        gone.unlink()
        lib.sync()
        assert lib.check() == [] and len(lib._load_index()) == 5
        assert all(Path(ref.path).name != "img2.jpg" for ref, _ in lib.search(gone_vector, k=6))
    with ImageLibrary(folder, encoder=tiny_clip) as lib:  # the saved file is the current one
        assert VectorIndex.load(lib.index_path, tiny_clip.dim).ids().size == 5
