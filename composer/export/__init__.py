"""Export an Article: Markdown (+ images), a single-file sanitised HTML page, Word (.docx), PDF,
WordPress block markup, and a bundle (folder and zip) holding all of them.

One module per format (markdown, html, docx, pdf, wordpress; formats names them), with what
they share in one place each: the escaping of model text (escaping), the figures' pictures
(figures), captions, alt texts and byline (content), and the bundle that holds every format
(bundle, manifest, reopen).

Everything the model wrote is untrusted: titles, paragraphs, captions and alt texts may carry
HTML, links, images or YAML syntax. Every format shows every character as the character it is,
and nothing in model text becomes a live link.
"""
from __future__ import annotations

from composer.export.base import FormatUnavailable
from composer.export.bundle import BundlePaths, warm_up, write_bundle
from composer.export.formats import ALL_FORMATS, DEFAULT_FORMATS, FORMATS, FormatError, parse_formats
from composer.export.html import article_fragment, export_html, sanitize_html
from composer.export.manifest import MANIFEST, check_replaceable, check_writable
from composer.export.markdown import export_markdown
from composer.export.reopen import BundleError, read_bundle
from composer.images import ImageError

__all__ = [
    "ALL_FORMATS",
    "DEFAULT_FORMATS",
    "FORMATS",
    "MANIFEST",
    "BundleError",
    "BundlePaths",
    "FormatError",
    "FormatUnavailable",
    "parse_formats",
    "ImageError",
    "article_fragment",
    "check_replaceable",
    "check_writable",
    "export_html",
    "export_markdown",
    "read_bundle",
    "warm_up",
    "sanitize_html",
    "write_bundle",
]
