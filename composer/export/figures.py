"""A figure's picture as every export format embeds it: decoded through the shared checks,
shrunk, re-encoded without metadata, and named by the hash of the bytes written."""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from composer.article import Article, Figure, Generated
from composer.imagegen import provenance
from composer.images import clean_jpeg_bytes, load_image

MAX_SIDE = 1600
JPEG_QUALITY = 88
IMAGES_DIR = "images"


@dataclass(frozen=True)
class ExportedImage:
    """A figure's picture, re-encoded without metadata, with the name it has in the bundle."""

    name: str  # "images/01-0123456789ab.jpg"
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def data_uri(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.data).decode("ascii")


# --- images -------------------------------------------------------------------------------

def encode_figure_image(path: str, index: int, generated: Generated | None = None) -> ExportedImage:
    """Decode through the shared checks, shrink, and re-encode pixels only (no EXIF/GPS); a
    generated picture carries its provenance XMP (composer/imagegen/provenance.py)."""
    # Decoded to the size it is exported at (a JPEG drafts down to it), not held at full size.
    loaded = load_image(path, max_side=MAX_SIDE)  # raises ImageError naming the file
    img: Image.Image = loaded.image
    xmp = provenance.xmp_packet(generated) if generated is not None else None
    data = clean_jpeg_bytes(img, quality=JPEG_QUALITY, xmp=xmp)
    # The name hashes the bytes we write, never ImageRef.sha256: that comes from article JSON
    # and could hold anything, including "../".
    digest = hashlib.sha256(data).hexdigest()[:12]
    return ExportedImage(name=f"{IMAGES_DIR}/{index:02d}-{digest}.jpg", data=data)


def export_images(article: Article) -> dict[int, ExportedImage]:
    """Encode every filled figure once; keys are block positions. Empty slots are left out."""
    images: dict[int, ExportedImage] = {}
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Figure) and block.image is not None:
            images[pos] = encode_figure_image(block.image.path, len(images) + 1, block.generated)
    return images


def write_images(out_dir: Path, images: dict[int, ExportedImage]) -> None:
    """out_dir/images/ with every picture. No empty images/ for an article without pictures: the
    manifest lists files, and a folder it cannot account for would make the next export refuse
    to replace the bundle."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if images:
        (out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    for image in images.values():
        (out_dir / image.name).write_bytes(image.data)
