"""Export an Article as Markdown (+ images), a single-file sanitised HTML page, and a zip bundle.

Everything the model wrote is untrusted: titles, paragraphs, captions and alt texts may carry
HTML, links, images or YAML syntax. Paragraph text is Markdown (emphasis, lists, headings, code),
but what would make it markup or a link is escaped first (`<`, entity-like `&`, `[`, `]`), so the
.md and the HTML page show every character the model or the writer wrote, and the only pictures in
an article are its figures. The HTML is rendered from that escaped text and then sanitised with an
allow-list, a second guard should the escaping ever miss something.

A bundle folder carries a manifest (`.composer-bundle.json`) listing exactly the files it holds:
only such a folder, unchanged, is ever replaced. Its article.json stores image paths relative to
the bundle (`images/...`), so a bundle can be moved, zipped and reopened with `read_bundle`.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import markdown
import nh3
import yaml
from PIL import Image

from composer.article import Article, Figure, Generated, Paragraph
from composer.export_sources import SourceNotes, marker_text, source_notes
from composer.imagegen import provenance
from composer.images import MAX_FILE_BYTES, ImageError, clean_jpeg_bytes, load_image, probe_image, sha256_file

__all__ = [
    "MANIFEST",
    "BundleError",
    "ImageError",
    "article_fragment",
    "check_replaceable",
    "check_writable",
    "export_html",
    "export_markdown",
    "read_bundle",
    "write_bundle",
]

MAX_SIDE = 1600
JPEG_QUALITY = 88
IMAGES_DIR = "images"
MANIFEST = ".composer-bundle.json"
MANIFEST_FORMAT = 1
ZIP_MEMBERS = ("article.md", "article.html", "article.json")
# A bundle's pictures are re-encoded JPEGs of 1600 pixels at most (a few hundred KB each): a zip
# that unpacks to more than this is not one of ours (a zip bomb, or a picture of 1 GB of zeros).
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
_COPY_CHUNK = 1 << 20
CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "article.css"

# No <a>: links in model text are text. <img> only for figures, whose src is our own data URI.
_ALLOWED_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "em", "strong", "ul", "ol", "li",
    "blockquote", "code", "pre", "figure", "figcaption", "img", "br", "hr", "sup", "section",
}
_ALLOWED_ATTRIBUTES = {"img": {"src", "alt"}}
_IMAGE_DATA_PREFIXES = ("data:image/jpeg;base64,", "data:image/png;base64,")
_LANG_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


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

def _encode_figure_image(path: str, index: int, generated: Generated | None = None) -> ExportedImage:
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


def _export_images(article: Article) -> dict[int, ExportedImage]:
    """Encode every filled figure once; keys are block positions. Empty slots are left out."""
    images: dict[int, ExportedImage] = {}
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Figure) and block.image is not None:
            images[pos] = _encode_figure_image(block.image.path, len(images) + 1, block.generated)
    return images


# --- Markdown -----------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- model text as Markdown that shows every character and links nothing ---------------------

# "&" a renderer would read as an entity (&amp; &#60; &copy;): written &amp; so it shows as typed.
# "<" before anything but a space could open a tag, comment, autolink or mail link (python-markdown
# reads "<" then a newline as the start of one): written &lt; ("3 < 4" stays as written). Every
# Markdown dialect decodes both entities, while a backslash before "<" is not universal. "[" and
# "]" are backslash-escaped (every dialect accepts that), so no link, image or reference
# definition can form. A run of backslashes before one of these keeps its meaning: the count
# decides whether the writer escaped it.
_UNSAFE_INLINE = re.compile(r"(\\*)(<(?! )|&(?=#[0-9]+;|#[xX][0-9A-Fa-f]+;|[A-Za-z][A-Za-z0-9]*;)|[\[\]])")
_MARKUP_LT = re.compile(r"<(?! )")  # a "<" that could open a tag or autolink
# A code span (a run of backticks, the shortest text, the same run again) as python-markdown and
# CommonMark find it: an opener after an even run of backslashes (group 1), kept apart.
_CODE_SPAN = re.compile(r"(?<![\\`])((?:\\\\)*)(`+)(?!`)(.+?)(?<!`)\2(?!`)", re.DOTALL)
# A line CommonMark could read as a code fence. Fences are not kept as code: python-markdown
# without fenced_code, and other renderers, pair them differently, which could turn what the
# fence held into live Markdown. The fence is escaped and its lines are text like any other.
_FENCE_LIKE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_INDENTED = re.compile(r"^( {4}|\t)")
_LIST_ITEM = re.compile(r"^[ \t>]*([*+-]|[0-9]+[.)])([ \t]|$)")
_MD_INLINE_SPECIALS = re.compile(r"([\\`*_\[\]>#!|])")


def _escape_unsafe(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        slashes, ch = m.group(1), m.group(2)
        escaped = len(slashes) % 2 == 1
        if ch in "[]":
            return m.group(0) if escaped else f"{slashes}\\{ch}"
        # After an odd run, the last backslash would escape the entity's "&" in CommonMark:
        # one more makes the run show as backslashes in every dialect.
        return slashes + ("\\" if escaped else "") + ("&lt;" if ch == "<" else "&amp;")

    return _UNSAFE_INLINE.sub(fix, text)


def _escape_backticks(text: str) -> str:
    return re.sub(r"(?<!\\)((?:\\\\)*)`", r"\1\\`", text)


def _escape_chunk(chunk: str) -> str:
    """Escape a run of text lines (no blank line in it), keeping its code spans literal (code
    shows as written). Where a span would run across lines, a block boundary inside the run
    could cut it, so the run's backticks are escaped instead and all of it is plain text. A
    span holding a "<" that could open a tag or autolink is made plain text too: CommonMark lets
    a tag or autolink that starts inside a code span win over it."""
    spans = list(_CODE_SPAN.finditer(chunk))
    if any("\n" in m.group(0) for m in spans):
        return _escape_unsafe(_escape_backticks(chunk))
    # A backtick outside the spans found here is unpaired: escaped, so that no renderer pairs it
    # another way (python-markdown reads "``word`[t](url)`" as the span "word" and a live link).
    parts: list[str] = []
    pos = 0
    for m in spans:
        parts.append(_escape_unsafe(_escape_backticks(chunk[pos:m.start(2)])))
        span = chunk[m.start(2):m.end()]
        parts.append(_escape_unsafe(_escape_backticks(span)) if _MARKUP_LT.search(m.group(3)) else span)
        pos = m.end()
    parts.append(_escape_unsafe(_escape_backticks(chunk[pos:])))
    return "".join(parts)


def _unfence(m: re.Match[str]) -> str:
    fence = m.group(2)
    return m.group(1) + (_escape_backticks(fence) if fence[0] == "`" else "\\" + fence)


@dataclass
class _MarkdownState:
    """What earlier blocks of the .md leave open that changes how a later block reads."""

    after_list: bool = False  # an indented chunk after a list continues the list: it is not code


def _safe_markdown(text: str, state: _MarkdownState) -> str:
    """Model or writer Markdown made safe: emphasis, lists, headings, code spans and indented
    code keep working; raw HTML, entities, links, images and autolinks become the text they were
    written as, in python-markdown and CommonMark alike."""
    lines = [_FENCE_LIKE.sub(_unfence, line) for line in text.split("\n")]
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            out.append(lines[i])
            i += 1
            continue
        end = i
        while end < len(lines) and lines[end].strip():
            end += 1
        chunk = lines[i:end]  # lines between blank lines: one paragraph, list or code block
        if not state.after_list and all(_INDENTED.match(line) for line in chunk):
            out.extend(chunk)  # an indented code block: literal in every dialect
        else:
            state.after_list = state.after_list or any(_LIST_ITEM.match(line) for line in chunk)
            out.append(_escape_chunk("\n".join(chunk)))
        i = end
    return "\n".join(out)


def _md_escape(text: str) -> str:
    """Make text literal in Markdown, on one line (captions, alt texts, titles)."""
    # Backslashes first: every backslash is then doubled, so none can touch the entities.
    return _escape_unsafe(_MD_INLINE_SPECIALS.sub(r"\\\1", _one_line(text)))


def _paragraph_markdown(block: Paragraph, state: _MarkdownState) -> str:
    if block.is_heading:
        level = min(max(block.level or 2, 1), 6)
        return "#" * level + " " + _escape_chunk(_one_line(block.text))
    # Only blank lines are trimmed: leading spaces may be an indented code block.
    return _safe_markdown(block.text.strip("\r\n").rstrip(), state)


def _figure_markdown(block: Figure, image: ExportedImage) -> str:
    alt = _md_escape(block.alt or block.caption)
    lines = [f"![{alt}]({image.name})"]
    caption = provenance.caption_text(block)  # a generated picture's caption says so
    if caption.strip():
        lines.append(f"*{_md_escape(caption)}*")
    return "\n".join(lines)


def _front_matter(article: Article) -> str:
    meta = article.metadata or {}
    fields: dict[str, Any] = {"title": str(article.title)}
    fields["date"] = str(meta.get("date") or _dt.date.today().isoformat())
    if meta.get("model"):
        fields["model"] = str(meta["model"])
    lines = [f"{key}: {_yaml_scalar(value)}" for key, value in fields.items()]
    generated = provenance.front_matter_entries(article)
    if generated:
        lines.append("generated_images:")
        for entry in generated:
            lines.extend(f"{'  - ' if k == 0 else '    '}{key}: {_yaml_scalar(str(value))}"
                         for k, (key, value) in enumerate(entry.items()))
    return "---\n" + "\n".join(lines) + "\n---\n"


def _yaml_scalar(value: str) -> str:
    # A double-quoted scalar on one line: the YAML emitter escapes newlines, quotes, line
    # separators and control characters, so a hostile title can never end the front matter
    # early or add keys.
    dumped = yaml.safe_dump(value, allow_unicode=True, default_style='"', width=2**31 - 1)
    return dumped.rstrip("\n")


def _paragraph_sources(article: Article) -> dict[int, str]:
    """The safe Markdown of every non-empty paragraph and heading, by block position: the .md
    and the HTML are both made from it, so they show the same text."""
    state = _MarkdownState()
    sources: dict[int, str] = {}
    for pos, block in enumerate(article.blocks):
        if isinstance(block, Paragraph) and block.text.strip():
            sources[pos] = _paragraph_markdown(block, state)
    return sources


def _markdown_body(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    sources = _paragraph_sources(article)
    parts: list[str] = []
    for pos, block in enumerate(article.blocks):
        marker = f" {_md_escape(marker_text(notes.markers.get(pos, ())))}" if notes and pos in notes.markers else ""
        if pos in sources:
            parts.append(sources[pos] + marker)
        elif isinstance(block, Figure) and pos in images:
            parts.append(_figure_markdown(block, images[pos]) + marker)
        # A figure slot that found no picture has nothing to show in a finished article.
    if notes:
        parts.append("## Sources")
        parts += [f"{_md_escape(f'[{n}]')} “{_md_escape(text)}”" for n, text in enumerate(notes.passages, 1)]
    return "\n\n".join(parts) + "\n"


def _markdown_document(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    title = _md_escape(article.title)
    heading = f"# {title}\n\n" if title else ""
    return _front_matter(article) + "\n" + heading + _markdown_body(article, images, notes)


def _write_markdown(article: Article, out_dir: Path, images: dict[int, ExportedImage],
                    notes: SourceNotes | None = None) -> Path:
    # No empty images/ for an article without pictures: the manifest lists files, and a folder
    # it cannot account for would make the next export refuse to replace the bundle.
    if images:
        (out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    for image in images.values():
        (out_dir / image.name).write_bytes(image.data)
    md_path = out_dir / "article.md"
    md_path.write_text(_markdown_document(article, images, notes), encoding="utf-8")
    return md_path


def export_markdown(article: Article, out_dir: str | Path) -> Path:
    """Write out_dir/article.md and out_dir/images/; return the Markdown file's path.

    All images are encoded before anything is written, so a bad image leaves nothing behind.
    """
    images = _export_images(article)
    return _write_markdown(article, Path(out_dir), images)


# --- HTML ---------------------------------------------------------------------------------

def _filter_attribute(tag: str, attr: str, value: str) -> str | None:
    """Second gate after nh3's scheme check: images may only be our own embedded JPEG/PNG
    (no tracking pixels, no data:text/html)."""
    if tag == "img" and attr == "src":
        return value if value.strip().lower().startswith(_IMAGE_DATA_PREFIXES) else None
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
        url_schemes={"data"},
        attribute_filter=_filter_attribute,
        link_rel=None,
        strip_comments=True,
    )


def _figure_html(block: Figure, image: ExportedImage) -> str:
    alt = html.escape(_one_line(block.alt or block.caption), quote=True)
    caption = _one_line(provenance.caption_text(block))  # a generated picture's caption says so
    figcaption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{image.data_uri}" alt="{alt}">{figcaption}</figure>'


def _text_renderer() -> markdown.Markdown:
    """python-markdown for safe paragraph Markdown, without the parts that make links, images or
    raw HTML: should the escaping ever miss one, it still shows as text."""
    md = markdown.Markdown(extensions=["sane_lists"], output_format="html")
    for name in ("reference", "link", "image_link", "image_reference", "short_reference",
                 "short_image_ref", "autolink", "automail", "html"):
        md.inlinePatterns.deregister(name, strict=False)
    md.parser.blockprocessors.deregister("reference", strict=False)
    md.preprocessors.deregister("html_block", strict=False)
    return md


def _html_body(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
    # One Markdown pass per block: an unclosed tag or fence in one paragraph cannot swallow
    # the figures and paragraphs after it.
    md = _text_renderer()
    sources = _paragraph_sources(article)
    parts: list[str] = []
    for pos, block in enumerate(article.blocks):
        marker = (f' <sup>{html.escape(marker_text(notes.markers[pos]))}</sup>'
                  if notes and pos in notes.markers else "")
        if pos in sources:
            rendered = md.reset().convert(sources[pos])
            parts.append(rendered[:-4] + marker + "</p>" if marker and rendered.endswith("</p>") else rendered + marker)
        elif isinstance(block, Figure) and pos in images:
            parts.append(_figure_html(block, images[pos]) + marker)
    if notes:
        items = "".join(f"<li>“{html.escape(_one_line(text))}”</li>" for text in notes.passages)
        parts.append(f'<section><h2>Sources</h2><ol>{items}</ol></section>')
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


def _html_document(article: Article, images: dict[int, ExportedImage], notes: SourceNotes | None = None) -> str:
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
        f"{_html_body(article, images, notes)}\n</article>\n</body>\n</html>\n"
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


class BundleError(ValueError):
    """A bundle (folder or zip) that cannot be read back; the message names it and says why."""


def _read_manifest(out_dir: Path) -> dict[str, str]:
    """The files a bundle folder's manifest lists (relative path -> sha256); {} when there is
    no readable manifest, so that nothing in the folder counts as ours."""
    path = out_dir / MANIFEST
    try:
        if path.is_symlink() or not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def _manifest_folders(files: dict[str, str]) -> set[str]:
    return {parent.as_posix() for name in files for parent in Path(name).parents if parent != Path(".")}


def _not_ours(out_dir: Path, files: dict[str, str], limit: int = 5) -> list[str]:
    """What in out_dir the manifest does not account for (a file it does not list, one changed
    since, a link, a folder of the writer's): up to `limit` names, [] for a folder all ours."""
    if not files:  # no manifest: everything is the writer's; name the first few without a walk
        return sorted(p.name for p in out_dir.iterdir())[:limit]
    folders = _manifest_folders(files)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(out_dir, followlinks=False):
        here = Path(dirpath).relative_to(out_dir)
        for name in sorted(dirnames):
            rel = (here / name).as_posix()
            if rel not in folders or (Path(dirpath) / name).is_symlink():
                found.append(rel + "/")
        dirnames[:] = sorted(d for d in dirnames if (here / d).as_posix() in folders)
        for name in sorted(filenames):
            rel = (here / name).as_posix()
            path = Path(dirpath) / name
            if rel == MANIFEST:
                continue
            if rel not in files or path.is_symlink() or not path.is_file():
                found.append(rel)
            elif sha256_file(path) != files[rel]:
                found.append(f"{rel} (changed since composer wrote it)")
        if len(found) >= limit:
            break
    return found[:limit]


def check_replaceable(out_dir: Path) -> None:
    """Only a new or empty folder, or a bundle this tool wrote and nobody changed since (its
    manifest lists exactly the files it holds), may be replaced: never the writer's files."""
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder; choose another output folder")
    try:
        foreign = _not_ours(out_dir, _read_manifest(out_dir))
    except OSError as exc:
        raise FileExistsError(f"{out_dir}: cannot check the folder ({exc.strerror or exc}); "
                              "choose another output folder") from exc
    if foreign:
        raise FileExistsError(
            f"{out_dir}: folder holds files that are not an article bundle composer wrote "
            f"({', '.join(foreign)}); nothing was changed: choose an empty or new output folder"
        )


def check_writable(out_dir: Path) -> None:
    """The bundle is staged beside out_dir and renamed into place: the nearest existing folder
    above it must take a new folder. The error names out_dir, never the staging folder."""
    out_dir = Path(out_dir).absolute()
    ancestor = out_dir.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OSError(f"{out_dir}: cannot write here ({ancestor} is not a folder)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.probe-", dir=ancestor))
    except OSError as exc:
        raise OSError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from exc


def _write_manifest(staging: Path) -> None:
    files = {
        p.relative_to(staging).as_posix(): sha256_file(p)
        for p in sorted(staging.rglob("*")) if p.is_file() and p.name != MANIFEST
    }
    data = {"format": MANIFEST_FORMAT, "generator": "composer", "files": files}
    (staging / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _remove_listed(folder: Path, files: dict[str, str]) -> None:
    """Delete what the manifest lists, then the folder if nothing else is left: a file someone
    put there in the meantime is never deleted."""
    for name in [*files, MANIFEST]:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    for name in sorted(_manifest_folders(files), key=lambda n: -n.count("/")):
        try:
            (folder / name).rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass


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
    _remove_listed(old, _read_manifest(old))


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


def write_bundle(article: Article, out_dir: str | Path, sources: bool = False) -> dict[str, Path]:
    """Write article.md, article.html, article.json, images/, article.zip and the manifest
    (.composer-bundle.json, the bundle's files and their sha256) into out_dir. `sources`: each
    paragraph numbers the writer's passages it rests on, and a Sources list quotes them.

    out_dir must be new, empty, or a bundle written here before and unchanged since
    (FileExistsError otherwise, nothing touched). Everything is written into a staging folder
    beside out_dir and renamed into place at the end; on any failure (an ImageError naming a bad
    file, an OSError naming out_dir for a full disk or a folder that cannot be written) out_dir
    is untouched. article.json holds bundle-relative image paths: `read_bundle` reopens it.
    """
    out_dir = Path(out_dir).absolute()
    check_replaceable(out_dir)
    images = _export_images(article)  # fail on a bad image before touching the disk
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise OSError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from exc
    try:
        # mkdtemp makes a private (0700) folder; the bundle should look like any other folder.
        staging.chmod(out_dir.stat().st_mode & 0o777 if out_dir.is_dir() else 0o755)
        notes = source_notes(article) if sources else None
        _write_markdown(article, staging, images, notes)
        (staging / "article.html").write_text(_html_document(article, images, notes), encoding="utf-8")
        (staging / "article.json").write_text(_portable(article, images).to_json(), encoding="utf-8")
        _write_zip(staging, images)
        _write_manifest(staging)
        _swap_into_place(staging, out_dir)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            raise OSError(f"{out_dir}: cannot write the bundle ({exc.strerror or exc})") from exc
        raise
    return {
        "markdown": out_dir / "article.md",
        "html": out_dir / "article.html",
        "json": out_dir / "article.json",
        "images": out_dir / IMAGES_DIR,
        "zip": out_dir / "article.zip",
    }


# --- reading a bundle back ----------------------------------------------------------------

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
