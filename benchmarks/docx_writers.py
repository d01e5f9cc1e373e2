"""python-docx against pandoc (pypandoc-binary) as the writer of article.docx (not a test).

Both are given the same article: python-docx through composer.export.docx, pandoc through the
exported HTML page (the sanitised page, pandoc's html reader, its docx writer). Prints for each
the time (best of a few runs), the file size, and what a writer finds in Word: the styles used
(Title, headings, Caption), whether each picture has its alt text, and the core properties.

    python benchmarks/docx_writers.py [BUNDLE_OR_ZIP]   (default: a two-picture café article)
"""
from __future__ import annotations

import hashlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docx  # noqa: E402
import pypandoc  # noqa: E402

from composer.article import Article, Figure, ImageRef, Paragraph  # noqa: E402
from composer.export import read_bundle  # noqa: E402
from composer.export.docx import docx_bytes  # noqa: E402
from composer.export.figures import export_images  # noqa: E402
from composer.export.html import body_parts, html_document  # noqa: E402

LIB = Path(__file__).resolve().parents[1] / "assets" / "library"


def sample() -> Article:
    def ref(p: Path) -> ImageRef:
        return ImageRef(hashlib.sha256(p.read_bytes()).hexdigest(), str(p))

    return Article("A morning at the café", (
        Paragraph("The first shot", kind="heading", level=2),
        Paragraph("The owner pulls the first shot at *6:45*, before the doors open. " * 4),
        Figure(ref(LIB / "coffee.jpg"), "An espresso on a red saucer", "Espresso cup"),
        Paragraph("The café cat", kind="heading", level=2),
        Paragraph("The cat sleeps on the window seat. " * 5),
        Figure(ref(LIB / "cat.jpg"), "The café cat", "A tabby cat"),
    ), {"model": "embedded:SmolLM2", "date": "2026-12-01"})


def best(fn, runs: int = 3) -> tuple[float, bytes]:
    times, out = [], b""
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def describe(data: bytes) -> str:
    doc = docx.Document(io.BytesIO(data))
    styles = sorted({p.style.name for p in doc.paragraphs if p.text.strip()})
    alts = [s._inline.docPr.get("descr") or "" for s in doc.inline_shapes]
    props = doc.core_properties
    return (f"styles {styles}; pictures {len(alts)}, with alt text {sum(bool(a) for a in alts)}; "
            f"core title {props.title!r}, comments {props.comments!r}, created {props.created}")


def main() -> None:
    if len(sys.argv) > 1:
        article = read_bundle(sys.argv[1], extract_to=tempfile.mkdtemp()) if sys.argv[1].endswith(".zip") \
            else read_bundle(sys.argv[1])
    else:
        article = sample()
    images = export_images(article)
    page = html_document(article, images)

    def with_python_docx() -> bytes:
        return docx_bytes(article, body_parts(article, images))

    def with_pandoc() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "a.docx"
            pypandoc.convert_text(page, "docx", format="html", outputfile=str(out))
            return out.read_bytes()

    t_py, d_py = best(with_python_docx)
    t_pd, d_pd = best(with_pandoc)
    print(f"python-docx: {t_py * 1000:.0f} ms, {len(d_py) / 1024:.0f} KiB; {describe(d_py)}")
    print(f"pandoc:      {t_pd * 1000:.0f} ms, {len(d_pd) / 1024:.0f} KiB; {describe(d_pd)}")
    print(f"pandoc / python-docx: time {t_pd / t_py:.1f}x, size {len(d_pd) / len(d_py):.2f}x")


if __name__ == "__main__":
    main()
