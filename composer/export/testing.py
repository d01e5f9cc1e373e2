"""Independent readers of the exported files, for the tests (tests/ is not a package to import):
none of them uses the code that wrote the file.

- pandoc_ast: the .docx as pandoc (pypandoc-binary's own pandoc) reads it.
- pdf_text / pdf_page_png / pdf_fonts: poppler's pdftotext, pdftoppm and pdffonts.
- parse_wp_blocks: WordPress block markup split into blocks by the block grammar's comment
  delimiters, as WordPress's own parser (WP_Block_Parser) finds them.
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def pandoc_ast(path: Path) -> dict[str, Any]:
    import pypandoc

    return json.loads(pypandoc.convert_file(str(path), "json", format="docx"))


def pandoc_text(node: Any) -> str:
    """The text of a pandoc AST node: Str, Space, SoftBreak and LineBreak, in order."""
    if isinstance(node, list):
        return "".join(pandoc_text(n) for n in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("t")
    if kind == "Str":
        return str(node["c"])
    if kind in ("Space", "SoftBreak", "LineBreak"):
        return " "
    if kind == "Code":
        return str(node["c"][1])
    return pandoc_text(node.get("c", []))


def pdf_text(path: Path) -> str:
    """The text in reading order, pages split by form feeds. -layout: pdftotext would otherwise
    join a line ending in "-" to the next without it, and "-->" read back as "->"."""
    return subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def pandoc_images(node: Any) -> list[dict[str, Any]]:
    """Every Image in a pandoc AST node, as {"alt": its alt text, "title": its title}."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for n in node:
            found += pandoc_images(n)
    elif isinstance(node, dict):
        if node.get("t") == "Image":
            _attr, alt, (_url, title) = node["c"]
            return [{"alt": pandoc_text(alt), "title": title}]
        found += pandoc_images(node.get("c", []))
    return found


def pdf_page_png(path: Path, out_prefix: Path, page: int = 1, dpi: int = 50) -> Path:
    subprocess.run(["pdftoppm", "-f", str(page), "-l", str(page), "-r", str(dpi), "-png", "-singlefile",
                    str(path), str(out_prefix)], check=True, capture_output=True)
    return out_prefix.with_suffix(".png")


def pdf_fonts(path: Path) -> list[str]:
    """The names of the fonts embedded in a PDF (pdffonts' first column)."""
    out = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines()[2:] if line.strip()]


# WordPress's block delimiter (wp-includes/class-wp-block-parser.php, next_token).
_WP_TOKEN = re.compile(
    r"<!--\s+(?P<closer>/)?wp:(?P<namespace>[a-z][a-z0-9_-]*/)?(?P<name>[a-z][a-z0-9_-]*)\s+"
    r"(?P<attrs>\{(?:[^}]|\}(?!\s+/?-->))*\}\s+)?(?P<void>/)?-->", re.DOTALL)


@dataclass
class WpBlock:
    name: str
    attrs: dict[str, Any]
    inner_html: str = ""  # the block's own markup, its inner blocks left out
    inner_blocks: list[WpBlock] = field(default_factory=list)


def parse_wp_blocks(text: str) -> tuple[list[WpBlock], str]:
    """The top-level blocks, and whatever non-whitespace markup lies outside any block (which
    WordPress would show as a Classic block: nothing of ours should)."""
    root = WpBlock("root", {})
    stack: list[WpBlock] = [root]
    outside: list[str] = []
    pos = 0
    for m in _WP_TOKEN.finditer(text):
        between = text[pos:m.start()]
        if len(stack) == 1:
            outside.append(between)
        else:
            stack[-1].inner_html += between
        pos = m.end()
        name = (m.group("namespace") or "core/") + m.group("name")
        if m.group("closer"):
            if stack[-1].name != name:
                raise ValueError(f"block {name} closed inside {stack[-1].name}")
            stack.pop()
            continue
        block = WpBlock(name, json.loads(m.group("attrs")) if m.group("attrs") else {})
        stack[-1].inner_blocks.append(block)
        if not m.group("void"):
            stack.append(block)
    if len(stack) != 1:
        raise ValueError(f"block {stack[-1].name} is never closed")
    outside.append(text[pos:])
    return root.inner_blocks, "".join(outside).strip()
