"""Memory bounded by what a request sends, not by how many photos or pixels it holds (issue 17,
case 2). The bounds are on a child process's peak resident memory (VmHWM), not on time."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from composer.images import MAX_UPLOADS, UPLOAD_SIDE, ImageError, load_uploads

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets/library/cat.jpg"

PEAK = """
def peak_mib():
    status = open("/proc/self/status").read()
    return int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) // 1024
"""


def run_child(script: str, *args: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(PEAK) + textwrap.dedent(script), *args],
                       capture_output=True, text=True, env=env, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()


def tiny_photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir()
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        path = folder / f"p{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path)
        out.append(path)
    return out


def huge_solid_png(path: Path, side: int = 7000) -> Path:
    Image.new("RGB", (side, side), (200, 30, 30)).save(path, compress_level=1)
    return path


def test_uploads_are_held_at_the_size_models_see_and_keep_their_own_dimensions(tmp_path):
    big = tmp_path / "big.jpg"
    Image.open(CAT).convert("RGB").resize((3000, 2000)).save(big, quality=80)
    (loaded,) = load_uploads([big])
    assert max(loaded.image.size) <= UPLOAD_SIDE
    assert (loaded.ref.width, loaded.ref.height) == (3000, 2000)  # the photo's own, for the article
    assert loaded.ref.path == str(big)  # the export reads the file again, at its own size


def test_more_photos_than_the_limit_are_refused_in_one_line_before_any_is_decoded(tmp_path):
    paths = [tmp_path / f"p{i}.jpg" for i in range(MAX_UPLOADS + 1)]
    for p in paths:
        shutil.copy(CAT, p)
    with pytest.raises(ImageError) as info:
        load_uploads(paths)
    message = str(info.value)
    assert f"at most {MAX_UPLOADS}" in message and str(MAX_UPLOADS + 1) in message and "\n" not in message


def test_photos_over_the_pixel_budget_are_refused_in_one_line(tmp_path):
    path = huge_solid_png(tmp_path / "huge.png")
    paths = [path] * 20  # 980 megapixels in all
    with pytest.raises(ImageError) as info:
        load_uploads(paths)
    assert "megapixels" in str(info.value) and "\n" not in str(info.value)


def test_the_editor_names_the_limit_as_the_writer_would_read_it(tmp_path):
    from composer.editor_session import EditorSession

    paths = [tmp_path / f"p{i}.jpg" for i in range(MAX_UPLOADS + 1)]
    for p in paths:
        shutil.copy(CAT, p)
    with pytest.raises(ImageError) as info:
        EditorSession().set_uploads(paths)
    assert str(info.value).startswith("Too many photos") and str(tmp_path) not in str(info.value)


def test_many_tiny_uploads_are_described_and_matched_within_bounded_memory(tmp_path):
    """The hostile run: 500 tiny photos took the app from 1.6 to 9.8 GB, the encoder describing
    all of them in one batch. Here 40 (the most one request may send) with the embedded encoder,
    as the editor's compose uses them: peak well under 3 GB (and under what one batch took)."""
    photos = tiny_photos(tmp_path / "photos", MAX_UPLOADS)
    lines = run_child("""
        import sys
        from pathlib import Path
        from composer.editor_session import EditorSession
        from composer.planner.pipeline import describe
        from composer.retrieval import load_encoder
        encoder = load_encoder("embedded")
        encoder.encode_texts(["warm up"])
        before = peak_mib()
        uploads = EditorSession().set_uploads(sorted(Path(sys.argv[1]).iterdir()))
        words = describe(encoder, uploads)
        vectors = encoder.encode_images([u.image for u in uploads])
        print(len(words), vectors.shape[0])
        print(before, peak_mib())
    """, str(tmp_path / "photos"))
    assert lines[-2] == f"{len(photos)} {len(photos)}"
    before, peak = map(int, lines[-1].split())
    print(f"40 tiny uploads: peak {peak} MiB, {before} MiB before them")
    assert peak < 3000 and peak - before < 400, f"peak {peak} MiB, {before} MiB before the uploads"


def test_huge_uploads_are_held_small_within_bounded_memory(tmp_path):
    """20 solid 49-megapixel PNGs (3.2 MB in all) took 5.8 GB, each decoded to RGB and held for
    the whole compose. Now 8 of them (within the pixel budget) are held as thumbnails: the peak
    is one decode, not eight."""
    folder = tmp_path / "huge"
    folder.mkdir()
    first = huge_solid_png(folder / "h0.png")
    for i in range(1, 8):
        shutil.copy(first, folder / f"h{i}.png")
    lines = run_child("""
        import sys
        from pathlib import Path
        from composer.editor_session import EditorSession
        before = peak_mib()
        uploads = EditorSession().set_uploads(sorted(Path(sys.argv[1]).iterdir()))
        print(len(uploads), max(max(u.image.size) for u in uploads))
        print(before, peak_mib())
    """, str(folder))
    count, side = map(int, lines[-2].split())
    assert count == 8 and side <= UPLOAD_SIDE
    before, peak = map(int, lines[-1].split())
    print(f"8 x 49 MP uploads: peak {peak} MiB, {before} MiB before them")
    assert peak - before < 700, f"peak {peak} MiB, {before} MiB before the uploads"


def test_an_export_decodes_a_huge_photo_at_the_size_it_is_exported_at(tmp_path):
    big = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), (10, 120, 200)).save(big, quality=85)
    lines = run_child("""
        import sys
        from composer.article import Article, Figure, Paragraph
        from composer.export import write_bundle
        from composer.images import load_image
        ref = load_image(sys.argv[1], draft_size=(64, 64)).ref
        before = peak_mib()
        write_bundle(Article("T", (Paragraph("p"), Figure(ref, "c"))), sys.argv[2])
        print(before, peak_mib())
    """, str(big), str(tmp_path / "out"))
    before, peak = map(int, lines[-1].split())
    print(f"export of a 48 MP JPEG: peak {peak} MiB, {before} MiB before it")
    assert peak - before < 150, f"peak {peak} MiB, {before} MiB before the export"
    with Image.open(next((tmp_path / "out" / "images").iterdir())) as exported:
        assert max(exported.size) == 1600
