"""Export an Article as Markdown (+ images), a single-file sanitised HTML page, and a zip bundle.

Everything the model wrote is untrusted: titles, paragraphs, captions and alt texts may carry
HTML, `javascript:` links or YAML syntax. The Markdown keeps the model's paragraph text as written
(it is the editable source); the HTML page is rendered from it and then sanitised with an
allow-list, so no script, event handler or foreign URL survives whatever the text says.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markdown
import nh3
import yaml
from PIL import Image

from composer.article import Article, Figure, Paragraph
from composer.images import ImageError, clean_jpeg_bytes, load_image

__all__ = ["export_markdown", "export_html", "write_bundle", "ImageError", "BUNDLE_FILES"]

MAX_SIDE = 1600
JPEG_QUALITY = 88
IMAGES_DIR = "images"
BUNDLE_FILES = ("article.md", "article.html", "article.json", "article.zip", IMAGES_DIR)
CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "article.css"

_ALLOWED_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "em", "strong", "a", "ul", "ol", "li",
    "blockquote", "code", "pre", "figure", "figcaption", "img", "br", "hr",
}
_ALLOWED_ATTRIBUTES = {"a": {"href"}, "img": {"src", "alt"}}
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_IMAGE_DATA_PREFIXES = ("data:image/jpeg;base64,", "data:image/png;base64,")
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


@dataclass(frozen=True)
class ExportedImage:
    """A figure's picture, re-encoded without metadata, with the name it has in the bundle."""

    name: str  # "images/01-0123456789ab.jpg"
    data: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.data).decode("ascii")


# --- images -------------------------------------------------------------------------------

def _encode_figure_image(path: str, index: int) -> ExportedImage:
    """Decode through the shared checks, shrink, and re-encode pixels only (no EXIF/GPS)."""
    loaded = load_image(path)  # raises ImageError naming the file
    img: Image.Image = loaded.image
    if max(img.size) > MAX_SIDE:
        img = img.copy()
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    data = clean_jpeg_bytes(img, quality=JPEG_QUALITY)
    # The name hashes the bytes we write, never ImageRef.sha256: that comes from article JSON
    # and could hold anything, including "../".
    digest = hashlib.sha256(data).hexdigest()[:12]
    return ExportedImage(name=f"{IMAGES_DIR}/{index:02d}-{digest}.jpg", data=data)


def _export_images(article: Article) -> dict[int, ExportedImage]:
    """Encode every filled figure once; keys are block positions. Empty slots are left out."""
    images: dict[int, ExportedImage] = {}
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Figure) and block.image is not None:
            images[pos] = _encode_figure_image(block.image.path, len(images) + 1)
    return images


# --- Markdown -----------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_MD_INLINE_SPECIALS = re.compile(r"([\\`*_\[\]<>#!|])")


def _md_escape(text: str) -> str:
    """Make text literal in Markdown, on one line (captions, alt texts, titles)."""
    return _MD_INLINE_SPECIALS.sub(r"\\\1", _one_line(text))


def _heading_markdown(block: Paragraph) -> str:
    level = min(max(block.level or 2, 1), 6)
    return "#" * level + " " + _one_line(block.text)


def _figure_markdown(block: Figure, image: ExportedImage) -> str:
    alt = _md_escape(block.alt or block.caption)
    lines = [f"![{alt}]({image.name})"]
    if block.caption.strip():
        lines.append(f"*{_md_escape(block.caption)}*")
    return "\n".join(lines)


def _front_matter(article: Article) -> str:
    meta = article.metadata or {}
    fields: dict[str, Any] = {"title": str(article.title)}
    fields["date"] = str(meta.get("date") or _dt.date.today().isoformat())
    if meta.get("model"):
        fields["model"] = str(meta["model"])
    lines = [f"{key}: {_yaml_scalar(value)}" for key, value in fields.items()]
    return "---\n" + "\n".join(lines) + "\n---\n"


def _yaml_scalar(value: str) -> str:
    # A double-quoted scalar on one line: the YAML emitter escapes newlines, quotes, line
    # separators and control characters, so a hostile title can never end the front matter
    # early or add keys.
    dumped = yaml.safe_dump(value, allow_unicode=True, default_style='"', width=2**31 - 1)
    return dumped.rstrip("\n")


# A "<" that opens a tag, comment or declaration. Written as an entity in the .md so that a
# renderer which passes raw HTML through (many do) shows the model's text instead of running
# it; every Markdown dialect turns &lt; back into "<" (a backslash escape is not universal).
_RAW_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")


def _markdown_body(article: Article, images: dict[int, ExportedImage]) -> str:
    parts: list[str] = []
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Paragraph):
            # Only blank lines are trimmed: leading spaces may be an indented code block.
            text = _heading_markdown(block) if block.is_heading else block.text.strip("\r\n").rstrip()
            if text.strip():
                parts.append(_RAW_HTML_START.sub("&lt;", text))
        elif isinstance(block, Figure) and pos in images:
            parts.append(_figure_markdown(block, images[pos]))
        # A figure slot that found no picture has nothing to show in a finished article.
    return "\n\n".join(parts) + "\n"


def _markdown_document(article: Article, images: dict[int, ExportedImage]) -> str:
    title = _md_escape(article.title)
    heading = f"# {title}\n\n" if title else ""
    return _front_matter(article) + "\n" + heading + _markdown_body(article, images)


def _write_markdown(article: Article, out_dir: Path, images: dict[int, ExportedImage]) -> Path:
    (out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    for image in images.values():
        (out_dir / image.name).write_bytes(image.data)
    md_path = out_dir / "article.md"
    md_path.write_text(_markdown_document(article, images), encoding="utf-8")
    return md_path


def export_markdown(article: Article, out_dir: str | Path) -> Path:
    """Write out_dir/article.md and out_dir/images/; return the Markdown file's path.

    All images are encoded before anything is written, so a bad image leaves nothing behind.
    """
    images = _export_images(article)
    return _write_markdown(article, Path(out_dir), images)


# --- HTML ---------------------------------------------------------------------------------

def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    """Second gate after nh3's scheme check: links may only leave by http(s)/mailto, and
    images may only be our own embedded JPEG/PNG (no tracking pixels, no data:text/html)."""
    lowered = value.strip().lower()
    if tag == "a" and attr == "href":
        return value if lowered.startswith(_LINK_SCHEMES) else None
    if tag == "img" and attr == "src":
        return value if lowered.startswith(_IMAGE_DATA_PREFIXES) else None
    return value


# nh3 serialises every attribute double-quoted, so this matches any img tag it emits.
_IMG_TAG = re.compile(r'<img((?:\s+[^\s"=>/]+(?:="[^"]*")?)*)\s*/?>')
_ATTR = re.compile(r'([^\s"=>/]+)(?:="([^"]*)")?')


def _drop_sourceless_images(fragment: str) -> str:
    """An image whose URL the filter refused would show as a broken-image icon: put its alt
    text in its place instead."""

    def replace(match: re.Match[str]) -> str:
        attrs = {name: html.unescape(value or "") for name, value in _ATTR.findall(match.group(1))}
        return match.group(0) if attrs.get("src") else html.escape(attrs.get("alt", ""))

    return _IMG_TAG.sub(replace, fragment)


def sanitize_html(fragment: str) -> str:
    return _drop_sourceless_images(_nh3_clean(fragment))


def _nh3_clean(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=_filter_attribute,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _figure_html(block: Figure, image: ExportedImage) -> str:
    alt = html.escape(_one_line(block.alt or block.caption), quote=True)
    caption = _one_line(block.caption)
    figcaption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{image.data_uri}" alt="{alt}">{figcaption}</figure>'


def _html_body(article: Article, images: dict[int, ExportedImage]) -> str:
    # One Markdown pass per block: an unclosed tag or fence in one paragraph cannot swallow
    # the figures and paragraphs after it.
    md = markdown.Markdown(extensions=["sane_lists"], output_format="html")
    parts: list[str] = []
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Paragraph):
            source = _heading_markdown(block) if block.is_heading else block.text
            if source.strip():
                parts.append(md.reset().convert(source))
        elif isinstance(block, Figure) and pos in images:
            parts.append(_figure_html(block, images[pos]))
    return sanitize_html("\n".join(parts))


def _stylesheet() -> str:
    css = CSS_PATH.read_text(encoding="utf-8")
    # The stylesheet is ours, but it sits inside <style>: make sure it cannot close it.
    return css.replace("</", "<\\/")


def _html_lang(article: Article) -> str:
    lang = str((article.metadata or {}).get("language") or "en")
    return lang if _LANG_RE.match(lang) else "en"


def _byline(article: Article) -> str:
    meta = article.metadata or {}
    bits = [str(meta.get("date") or _dt.date.today().isoformat())]
    if meta.get("model"):
        bits.append(f"written with {meta['model']}")
    return html.escape(" · ".join(bits))


def _html_document(article: Article, images: dict[int, ExportedImage]) -> str:
    title = html.escape(_one_line(article.title), quote=True)
    # The CSP is a second line of defence should anything slip past the sanitiser: no
    # scripts, no network, only inline styles and embedded images.
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_html_lang(article)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="composer">\n'
        f"<title>{title}</title>\n<style>\n{_stylesheet()}</style>\n</head>\n<body>\n<article>\n"
        f'<header><h1>{title}</h1><p class="byline">{_byline(article)}</p></header>\n'
        f"{_html_body(article, images)}\n</article>\n</body>\n</html>\n"
    )


def article_fragment(article: Article) -> str:
    """The article as a sanitised HTML fragment (title and body, images embedded) for a page
    that has its own head, such as the editor's preview."""
    title = html.escape(_one_line(article.title), quote=True)
    return (f'<article class="composer-article"><h1>{title}</h1>\n'
            f"{_html_body(article, _export_images(article))}</article>")


def export_html(article: Article) -> str:
    """A self-contained HTML page: images embedded as data URIs, stylesheet inline."""
    return _html_document(article, _export_images(article))


# --- bundle -------------------------------------------------------------------------------

def _write_zip(staging: Path, images: dict[int, ExportedImage]) -> Path:
    zip_path = staging / "article.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ("article.md", "article.html", "article.json"):
            zf.write(staging / name, name)
        for image in images.values():
            # JPEG does not compress further; storing saves time.
            zf.writestr(image.name, image.data, compress_type=zipfile.ZIP_STORED)
    return zip_path


def check_replaceable(out_dir: Path) -> None:
    """Only an empty folder or an earlier bundle may be replaced: never the user's other files."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder; choose another output folder")
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in BUNDLE_FILES)
    if foreign:
        raise FileExistsError(
            f"{out_dir}: folder holds files that are not an article bundle ({', '.join(foreign[:5])}); "
            "choose an empty or new output folder"
        )


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder to out_dir; an earlier bundle is moved aside first
    and restored if the rename fails, so the caller sees the old bundle or the new one."""
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
    shutil.rmtree(old, ignore_errors=True)


def write_bundle(article: Article, out_dir: str | Path) -> dict[str, Path]:
    """Write article.md, article.html, article.json, images/ and article.zip into out_dir.

    Everything is written into a staging folder beside out_dir and renamed into place at the
    end; on any failure (an ImageError naming a bad file, a full disk) out_dir is untouched.
    """
    out_dir = Path(out_dir).absolute()
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    images = _export_images(article)  # fail on a bad image before touching the disk
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        # mkdtemp makes a private (0700) folder; the bundle should look like any other folder.
        staging.chmod(out_dir.stat().st_mode & 0o777 if out_dir.is_dir() else 0o755)
        _write_markdown(article, staging, images)
        (staging / "article.html").write_text(_html_document(article, images), encoding="utf-8")
        (staging / "article.json").write_text(article.to_json(), encoding="utf-8")
        _write_zip(staging, images)
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "markdown": out_dir / "article.md",
        "html": out_dir / "article.html",
        "json": out_dir / "article.json",
        "images": out_dir / IMAGES_DIR,
        "zip": out_dir / "article.zip",
    }
