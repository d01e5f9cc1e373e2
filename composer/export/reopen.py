"""read_bundle: reopen a bundle folder or its zip for editing. Everything read back is untrusted
input (paths, hashes, sizes): validated, never used as a file name as it is."""
from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from composer.article import Article, Figure
from composer.export.bundle import ZIP_MEMBERS
from composer.export.figures import IMAGES_DIR
from composer.images import MAX_FILE_BYTES, ImageError, load_image, probe_image

# A bundle's pictures are re-encoded JPEGs of 1600 pixels at most (a few hundred KB each): a zip
# that unpacks to more than this is not one of ours (a zip bomb, or a picture of 1 GB of zeros).
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
_COPY_CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle (folder or zip) that cannot be read back; the message names it and says why."""



_SAFE_IMAGE_NAME = re.compile(r"^images/[A-Za-z0-9][A-Za-z0-9._-]*$")


def read_bundle(source: str | Path, extract_to: str | Path | None = None) -> Article:
    """Reopen a bundle for editing: the Article whose image paths are absolute again.

    `source` is a bundle folder (as write_bundle made it, moved anywhere) or its article.zip;
    a zip is first extracted into `extract_to`, a new or empty folder, which then holds the
    pictures the returned Article points at. Image paths in article.json must lie inside the
    bundle (`images/...`) and name existing files. Raises BundleError naming the bundle and the
    reason for anything else (missing or unreadable article.json, a path outside the bundle,
    an unsafe or oversized zip member, a non-empty `extract_to`).
    """
    source = Path(source)
    if source.is_dir():
        folder = source
    elif source.is_file() and zipfile.is_zipfile(source):
        if extract_to is None:
            raise BundleError(f"{source}: a zipped bundle needs a folder to extract into")
        folder = Path(extract_to)
        _extract_bundle_zip(source, folder)
    else:
        raise BundleError(f"{source}: not a bundle folder or zip")
    try:
        article = Article.from_json((folder / "article.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"{source}: no article.json") from exc
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BundleError(f"{source}: cannot read article.json ({exc})") from exc
    root = folder.resolve()
    checked: dict[Path, Any] = {}

    def absolute(image: Any) -> Any:
        rel = str(image.path)
        path = (root / rel).resolve()
        if Path(rel).is_absolute() or not path.is_relative_to(root):
            raise BundleError(f"{source}: picture path {rel!r} points outside the bundle")
        if not path.is_file():
            raise BundleError(f"{source}: picture {rel} is missing")
        if path not in checked:
            # What article.json says of a picture (its hash above all: the workspace names files
            # by it) is never believed: the picture is decoded, checked and hashed here.
            try:
                checked[path] = load_image(path, draft_size=(256, 256)).ref
            except ImageError as exc:
                raise BundleError(f"{source}: picture {rel}: {exc.reason}") from None
        ref = checked[path]
        return replace(image, path=str(path), sha256=ref.sha256, width=ref.width, height=ref.height)

    blocks: list[Any] = []
    for block in article.blocks:
        if isinstance(block, Figure):
            block = replace(
                block,
                image=None if block.image is None else absolute(block.image),
                candidates=tuple(replace(c, image=absolute(c.image)) for c in block.candidates),
            )
        blocks.append(block)
    return article.with_blocks(blocks)


def _extract_bundle_zip(zip_path: Path, folder: Path) -> None:
    """Extract only what a bundle holds, checked before anything is written."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BundleError(f"{folder}: not empty; choose a new or empty folder to open {zip_path.name} into")
    created = not folder.exists()
    try:
        _extract_checked(zip_path, folder)
    except BaseException:
        # Leave the folder as it was: gone if we made it, empty if it was.
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _extract_checked(zip_path: Path, folder: Path) -> None:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = zf.infolist()
            for info in members:
                if info.is_dir():
                    continue
                if info.filename not in ZIP_MEMBERS and not _SAFE_IMAGE_NAME.match(info.filename):
                    raise BundleError(f"{zip_path}: unexpected member {info.filename!r} (not part of a bundle)")
                if info.filename.startswith(f"{IMAGES_DIR}/") and info.file_size > MAX_FILE_BYTES:
                    raise BundleError(f"{zip_path}: picture {info.filename} is too large "
                                      f"({info.file_size >> 20} MiB > {MAX_FILE_BYTES >> 20} MiB)")
            if sum(info.file_size for info in members) > MAX_BUNDLE_BYTES:
                raise BundleError(f"{zip_path}: too large to open (over {MAX_BUNDLE_BYTES >> 20} MiB unpacked)")
            (folder / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
            for info in members:
                if info.is_dir():
                    continue
                dest = folder / info.filename
                with zf.open(info) as src, dest.open("wb") as dst:
                    # The header's size could lie: copy no more than it claims, a chunk at a time.
                    left = info.file_size
                    while chunk := src.read(min(_COPY_CHUNK, left + 1)):
                        left -= len(chunk)
                        if left < 0:
                            raise BundleError(f"{zip_path}: member {info.filename} is larger than it says")
                        dst.write(chunk)
                if info.filename.startswith(f"{IMAGES_DIR}/"):
                    try:
                        probe_image(dest)
                    except ImageError as exc:
                        raise BundleError(f"{zip_path}: {info.filename}: {exc.reason}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"{zip_path}: cannot read the zip ({exc})") from exc
