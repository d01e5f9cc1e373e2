"""Decode and check an image file once: format, pixel count, integrity; identify it by content hash.

Uploads and library images both come through here, so a corrupt, truncated, non-image or
decompression-bomb file gets the same one-line message wherever it shows up.
"""
from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from composer.article import ImageRef

# A 50-megapixel ceiling covers any camera a writer owns and stops bombs long before memory runs out.
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 100 * 1024 * 1024
# A writer's photos for one article: how many, how many pixels in all (what decoding them costs),
# and the size each is held at. No model or encoder is shown more than UPLOAD_SIDE pixels; the
# export reads the file again at its own size.
MAX_UPLOADS = 40
MAX_UPLOAD_PIXELS = 400_000_000
UPLOAD_SIDE = 1024
FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}
_ORIENTATION = 0x0112  # the EXIF tag that says how a camera held the picture
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ImageError(ValueError):
    """An image the user gave cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}" if self.path else reason)


class UploadLimitError(ImageError):
    """The photos of one request are too many, or too many pixels in all; no one file is at fault."""

    def __init__(self, reason: str):
        super().__init__("", reason)


@dataclass(frozen=True)
class LoadedImage:
    ref: ImageRef
    image: Image.Image  # RGB, EXIF orientation applied
    format: str


def sha256_file(path: str | Path) -> str:
    """The content hash of a file of any size, read a megabyte at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_sha256(value: object) -> bool:
    """Whether `value` is what a content hash must be (64 lower-case hex digits). A hash read from
    a file someone else made is checked with this before it is used for anything but comparing."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _check_file_size(path: Path) -> int:
    """The file's size, or an ImageError naming it: missing or unreadable, empty, or too large."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageError(path, "empty file")
    if size > MAX_FILE_BYTES:
        raise ImageError(path, f"file too large ({size // (1024 * 1024)} MiB > {MAX_FILE_BYTES // (1024 * 1024)} MiB)")
    return size


def _decode_error(path: str | Path, exc: BaseException) -> ImageError:
    """What Pillow's failure to read a file means to the writer, naming the file."""
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageError(path, "image too large (decompression bomb)")
    if isinstance(exc, UnidentifiedImageError):
        return ImageError(path, "not an image")
    return ImageError(path, f"corrupt or truncated image ({exc})")


def probe_image(path: str | Path) -> tuple[str, int, int]:
    """(format, width, height) of an image file, checked as load_image checks it (file size,
    format, pixel count) from its header alone: nothing is decoded."""
    path = Path(path)
    _check_file_size(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt, (width, height) = img.format or "?", img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, UnidentifiedImageError, OSError,
            SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(path, exc) from exc
    _check_header(path, fmt, width, height)
    return fmt, width, height


def _check_header(name: str | Path, fmt: str, width: int, height: int) -> None:
    if fmt not in FORMATS:
        raise ImageError(name, f"unsupported image format {fmt}")
    if width <= 0 or height <= 0:
        raise ImageError(name, "image has no pixels")
    if width * height > MAX_PIXELS:
        limit = MAX_PIXELS // 1_000_000
        raise ImageError(name, f"image too large ({width}x{height} pixels; limit {limit} megapixels)")


def load_uploads(paths: Sequence[str | Path]) -> list[LoadedImage]:
    """A writer's photos for one request, each checked and held at UPLOAD_SIDE at most (its
    ref keeps the file and its own dimensions). The count and the pixels in all are checked from
    the files' headers before anything is decoded; UploadLimitError says which limit in one line."""
    paths = list(paths)
    if len(paths) > MAX_UPLOADS:
        raise UploadLimitError(f"Too many photos ({len(paths)}): at most {MAX_UPLOADS} per article.")
    total = 0
    for path in paths:
        _, width, height = probe_image(path)
        total += width * height
    if total > MAX_UPLOAD_PIXELS:
        raise UploadLimitError(f"The photos hold {total // 1_000_000} megapixels in all: at most "
                               f"{MAX_UPLOAD_PIXELS // 1_000_000} per article (send fewer or smaller ones).")
    return [load_image(path, max_side=UPLOAD_SIDE) for path in paths]


def load_image(path: str | Path, draft_size: tuple[int, int] | None = None,
               max_side: int | None = None) -> LoadedImage:
    """Read, check and decode an image file. `draft_size` lets JPEG decode at a reduced scale
    (much cheaper) when the caller only needs a small version, e.g. for an encoder; `max_side`
    keeps the decoded picture no larger than that (its ref keeps the file's own dimensions)."""
    path = Path(path)
    _check_file_size(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if draft_size is None and max_side:
        draft_size = (max_side, max_side)
    return decode_image_bytes(data, path, draft_size=draft_size, max_side=max_side)


def decode_image_bytes(data: bytes, name: str | Path = "<bytes>", draft_size: tuple[int, int] | None = None,
                       sha256: str | None = None, max_side: int | None = None) -> LoadedImage:
    """`sha256` spares a second hash when the caller already has the bytes' digest."""
    digest = sha256 or sha256_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = img.format or "?"
            width, height = img.size
            _check_header(name, fmt, width, height)
            if draft_size and fmt == "JPEG":
                img.draft("RGB", draft_size)
            img.load()
            # exif_transpose copies the image even when there is nothing to turn: ask first.
            if img.getexif().get(_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            if max_side and max(img.size) > max_side:
                img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, UnidentifiedImageError, OSError,
            SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(name, exc) from exc
    ref = ImageRef(sha256=digest, path=str(name), width=width, height=height)
    return LoadedImage(ref=ref, image=img, format=fmt)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparency on white: a black background is what a naive convert gives.
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[-1])
        return background
    return img.convert("RGB")


def clean_jpeg_bytes(image: Image.Image, quality: int = 90, xmp: bytes | None = None) -> bytes:
    """Re-encode pixels only: no EXIF, GPS, XMP or ICC payloads survive, but for the `xmp`
    packet the caller writes itself (a generated picture's provenance)."""
    out = io.BytesIO()
    extra = {"xmp": xmp} if xmp else {}
    _to_rgb(image).save(out, format="JPEG", quality=quality, optimize=True, **extra)
    return out.getvalue()


def display_name(path: str | Path) -> str:
    """The name a writer knows a file by. A web server keeps uploads in a cache folder of its own
    (`/tmp/gradio/<hash>/holiday.jpg`); only the last part is the writer's."""
    return Path(str(path)).name


def named_image_error(exc: ImageError) -> ImageError:
    """The same error, naming the file rather than where a server happens to keep it."""
    if not exc.path:
        return exc
    return ImageError(display_name(exc.path), exc.reason)
