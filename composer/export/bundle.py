"""write_bundle: every format of an article, its images, article.json and the zip, staged beside
the output folder and renamed into place, so the folder holds the old bundle or the new one.

Its article.json stores image paths relative to the bundle (`images/...`), so a bundle can be
moved, zipped and reopened with `read_bundle` (reopen.py).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from composer.article import Article, Figure
from composer.export.base import FormatUnavailable, Source
from composer.export.figures import IMAGES_DIR, ExportedImage, export_images, write_images
from composer.export.formats import DEFAULT_FORMATS, FORMATS
from composer.export.manifest import check_replaceable, read_manifest, remove_listed, write_manifest
from composer.export_sources import source_notes

# What a bundle's zip may hold besides images/: every format's file and article.json.
ZIP_MEMBERS = (*(f.filename for f in FORMATS.values()), "article.json")


def _write_zip(staging: Path, names: list[str], images: dict[int, ExportedImage]) -> Path:
    zip_path = staging / "article.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in (*names, "article.json"):
            zf.write(staging / name, name)
        for image in images.values():
            # JPEG does not compress further; storing saves time.
            zf.writestr(image.name, image.data, compress_type=zipfile.ZIP_STORED)
    return zip_path



def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder to out_dir; an earlier bundle (or empty folder) is
    moved aside first and restored if the rename fails, so the caller sees the old bundle or the
    new one."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()  # only the unique name was wanted
    os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    remove_listed(old, read_manifest(old))


def _portable(article: Article, images: dict[int, ExportedImage]) -> Article:
    """The article as the bundle stores it: each picture by its path inside the bundle and the
    hash of the bytes there (re-encoded: not the original's), as read_bundle will find them. A
    candidate whose picture is not in the bundle is left out: its path is the writer's."""
    by_sha: dict[str, ExportedImage] = {}
    blocks: list[Any] = []
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Figure) and block.image is not None and pos in images:
            by_sha.setdefault(block.image.sha256, images[pos])
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Figure):
            image = block.image
            if image is not None:
                image = replace(image, path=images[pos].name, sha256=images[pos].sha256)
            candidates = tuple(replace(c, image=replace(c.image, path=shown.name, sha256=shown.sha256))
                               for c in block.candidates if (shown := by_sha.get(c.image.sha256)) is not None)
            block = replace(block, image=image, candidates=candidates)
        blocks.append(block)
    # The editor's file names of the pictures (metadata["names"], by hash) follow the new hashes.
    names = article.metadata.get("names")
    if isinstance(names, dict):
        renamed = {images[pos].sha256: names[b.image.sha256] for pos, b in enumerate(article.blocks)
                   if isinstance(b, Figure) and b.image is not None and pos in images and b.image.sha256 in names}
        return Article(article.title, tuple(blocks), {**article.metadata, "names": renamed})
    return article.with_blocks(blocks)


class BundlePaths(dict[str, Path]):
    """What write_bundle wrote, by key ("markdown", "html", "docx", "pdf", "wp", "json", "images",
    "zip"), and in `skipped` each asked-for format this machine could not make, with the one-line
    reason (a PDF without WeasyPrint's system libraries)."""

    def __init__(self, paths: dict[str, Path], skipped: dict[str, str]):
        super().__init__(paths)
        self.skipped = skipped


def write_bundle(article: Article, out_dir: str | Path, sources: bool = False,
                 formats: Sequence[str] = DEFAULT_FORMATS) -> BundlePaths:
    """Write the asked-for formats (names of composer.export.formats.FORMATS: md, html, docx,
    pdf, wp), article.json, images/, article.zip (all of them) and the manifest
    (.composer-bundle.json, the bundle's files and their sha256) into out_dir. `sources`: each
    paragraph numbers the writer's passages it rests on, and a Sources list quotes them.

    out_dir must be new, empty, or a bundle written here before and unchanged since
    (FileExistsError otherwise, nothing touched). Everything is written into a staging folder
    beside out_dir and renamed into place at the end; on any failure (an ImageError naming a bad
    file, an OSError naming out_dir for a full disk or a folder that cannot be written) out_dir
    is untouched. A format this machine cannot make (FormatUnavailable) is left out and named in
    the answer's `skipped`; the others are written. article.json holds bundle-relative image
    paths: `read_bundle` reopens it.
    """
    chosen = [FORMATS[name] for name in dict.fromkeys(formats)]  # KeyError: a name not in FORMATS
    out_dir = Path(out_dir).absolute()
    check_replaceable(out_dir)
    images = export_images(article)  # fail on a bad image before touching the disk
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise OSError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from exc
    written: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    try:
        # mkdtemp makes a private (0700) folder; the bundle should look like any other folder.
        staging.chmod(out_dir.stat().st_mode & 0o777 if out_dir.is_dir() else 0o755)
        source = Source(article, images, source_notes(article) if sources else None)
        write_images(staging, images)
        for fmt in chosen:
            try:
                data = fmt.render(source)
            except FormatUnavailable as exc:
                skipped[fmt.name] = str(exc)
                continue
            (staging / fmt.filename).write_bytes(data)
            written[fmt.key] = out_dir / fmt.filename
        (staging / "article.json").write_text(_portable(article, images).to_json(), encoding="utf-8")
        _write_zip(staging, [p.name for p in written.values()], images)
        write_manifest(staging)
        _swap_into_place(staging, out_dir)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            raise OSError(f"{out_dir}: cannot write the bundle ({exc.strerror or exc})") from exc
        raise
    return BundlePaths({**written, "json": out_dir / "article.json", "images": out_dir / IMAGES_DIR,
                        "zip": out_dir / "article.zip"}, skipped)


def warm_up(formats: Sequence[str] | None = None) -> None:
    """Make each format once, on a one-line article, and throw it away. The first PDF in a
    process imports WeasyPrint and has fontconfig scan the fonts (0.6 s here against 0.08 s for
    the next); the editor does this at start so that a writer's first Export, maybe beside
    another writer's compose on a busy CPU, pays only for their article. A format that cannot
    be made (no Pango) is skipped here as it is in write_bundle."""
    from composer.article import Paragraph

    with tempfile.TemporaryDirectory(prefix="composer-warm-up-") as folder:
        write_bundle(Article("Warm-up", (Paragraph("Warm-up."),)), Path(folder) / "out",
                     formats=tuple(formats) if formats is not None else tuple(FORMATS))
