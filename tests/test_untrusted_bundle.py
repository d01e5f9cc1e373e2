"""A bundle someone else made, opened in the editor: every field of its article.json and every
member of its zip is untrusted input (issue 17, cases 1 and 3)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from composer.editor_session import EditorSession
from composer.export import BundleError, read_bundle
from composer.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets/library/cat.jpg"


def bundle_zip(path: Path, sha256: str, member: bytes, name: str = "images/01-aaaaaaaaaaaa.jpg",
               extra: dict[str, bytes] | None = None) -> Path:
    """A zip shaped like an exported bundle, one figure whose picture is `member`."""
    article = {
        "format": 1, "title": "Hostile", "metadata": {},
        "blocks": [
            {"type": "paragraph", "text": "A paragraph.", "kind": "paragraph", "level": 0},
            {"type": "figure", "caption": "c", "alt": "c", "source": "upload",
             "image": {"sha256": sha256, "path": name, "width": 1, "height": 1},
             "candidates": [{"image": {"sha256": sha256, "path": name, "width": 1, "height": 1}, "score": 0.5}]},
        ],
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("article.json", json.dumps(article))
        zf.writestr(name, member)
        for key, value in (extra or {}).items():
            zf.writestr(key, value)
    return path


def climb_to(target: Path) -> str:
    """A 'sha256' that walks from any folder up to / and down to `target` (suffix dropped)."""
    return "../" * 30 + str(target.with_suffix(""))[1:]


# --- case 1: a picture's sha256 is never a file name -----------------------------------------

def test_a_sha256_that_is_a_path_writes_nothing_outside_the_data_folder(tmp_path):
    target = tmp_path / "outside" / "pwned.jpg"
    target.parent.mkdir()
    zipped = bundle_zip(tmp_path / "evil.zip", climb_to(target), CAT.read_bytes())
    s = EditorSession(Workspace(tmp_path / "data"))
    message = s.open_file(zipped)
    assert message.startswith("Opened"), message
    assert not target.exists()
    real = hashlib.sha256(CAT.read_bytes()).hexdigest()
    figure = s.article.figures[0]
    assert figure.image.sha256 == real  # recomputed from the bytes, not read from the file
    assert Path(figure.image.path) == s.workspace.folder(s.article_id) / "images" / f"{real}.jpg"
    assert all(c.image.sha256 == real for c in figure.candidates)
    s.close()


def test_a_sha256_that_names_an_existing_file_does_not_show_or_export_it(tmp_path):
    secret = tmp_path / "outside" / "secret.jpg"
    secret.parent.mkdir()
    secret.write_bytes(b"the server's own file, not a picture of the bundle")
    zipped = bundle_zip(tmp_path / "evil.zip", climb_to(secret), CAT.read_bytes())
    s = EditorSession(Workspace(tmp_path / "data"))
    assert s.open_file(zipped).startswith("Opened")
    shown = Path(s.article.figures[0].image.path)
    assert shown.resolve() != secret.resolve()
    assert shown.read_bytes() == CAT.read_bytes()
    s.close()


def test_read_bundle_recomputes_hash_and_size_of_each_picture(tmp_path):
    article = read_bundle(bundle_zip(tmp_path / "b.zip", "not a hash", CAT.read_bytes()),
                          extract_to=tmp_path / "x")
    image = article.figures[0].image
    assert image.sha256 == hashlib.sha256(CAT.read_bytes()).hexdigest()
    assert (image.width, image.height) != (1, 1)


def test_a_stored_picture_is_named_by_its_own_bytes(tmp_path):
    """Workspace.adopt hashes what it copies: a reference with a hostile sha256 (from anywhere)
    cannot choose the stored name."""
    from composer.article import Article, Figure, ImageRef, Paragraph

    ws = Workspace(tmp_path / "data")
    aid = ws.create()
    target = tmp_path / "outside" / "x.jpg"
    target.parent.mkdir()
    art = Article("T", (Paragraph("p"), Figure(ImageRef(climb_to(target), str(CAT)), "c")))
    adopted = ws.adopt(aid, art)
    assert not target.exists()
    real = hashlib.sha256(CAT.read_bytes()).hexdigest()
    assert adopted.figures[0].image.sha256 == real
    assert Path(adopted.figures[0].image.path).name == f"{real}.jpg"


# --- case 3: members are pictures, and a bundle has a size --------------------------------------

def test_a_member_that_is_not_a_picture_is_refused_and_not_kept(tmp_path):
    zipped = bundle_zip(tmp_path / "zeros.zip", "0" * 64, b"\0" * 100_000)
    data = tmp_path / "data"
    s = EditorSession(Workspace(data))
    message = s.open_file(zipped)
    assert message.startswith("⚠️") and "not an image" in message, message
    assert s.article is None
    assert not any(p.is_file() for p in data.rglob("*") if p.parent.name == "images")
    s.close()


def test_an_unreferenced_member_that_is_not_a_picture_is_refused(tmp_path):
    zipped = bundle_zip(tmp_path / "extra.zip", "0" * 64, CAT.read_bytes(),
                        extra={"images/02-bbbbbbbbbbbb.jpg": b"\0" * 5000})
    with pytest.raises(BundleError, match="not an image"):
        read_bundle(zipped, extract_to=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_bundle_over_the_total_limit_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import composer.export.reopen as export

    zipped = bundle_zip(tmp_path / "b.zip", "0" * 64, CAT.read_bytes())
    monkeypatch.setattr(export, "MAX_BUNDLE_BYTES", len(CAT.read_bytes()))
    with pytest.raises(BundleError, match="too large"):
        read_bundle(zipped, extract_to=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_gigabyte_of_zeros_in_a_bundle_is_refused_within_bounded_memory(tmp_path):
    """The hostile run's bundle: a 'picture' of 1 GB of zeros (about 1 MB compressed). Opened in
    a child process whose peak RSS is measured: refused, and nothing like 1 GB read."""
    zipped = tmp_path / "bomb.zip"
    article = {"format": 1, "title": "Bomb", "metadata": {}, "blocks": [
        {"type": "figure", "caption": "c", "image": {"sha256": "0" * 64, "path": "images/01-aaaaaaaaaaaa.jpg"}}]}
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("article.json", json.dumps(article))
        with zf.open("images/01-aaaaaaaaaaaa.jpg", "w", force_zip64=True) as member:
            chunk = b"\0" * 10**7
            for _ in range(100):
                member.write(chunk)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest).
    script = textwrap.dedent("""
        import sys
        from composer.editor_session import EditorSession
        from composer.workspace import Workspace
        s = EditorSession(Workspace(sys.argv[2]))
        print(s.open_file(sys.argv[1]))
        status = open("/proc/self/status").read()
        print(int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) // 1024)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", script, str(zipped), str(tmp_path / "data")],
                       capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    message, peak_mib = r.stdout.strip().splitlines()[-2:]
    assert message.startswith("⚠️") and "too large" in message, message
    assert int(peak_mib) < 600, f"peak RSS {peak_mib} MiB"
    assert not any(p.is_file() for p in (tmp_path / "data").rglob("*") if p.parent.name == "images")
