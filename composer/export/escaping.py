"""Model and writer text as Markdown that shows every character and links nothing.

Paragraph text is Markdown (emphasis, lists, headings, code), but what would make it markup or a
link is escaped first (`<`, entity-like `&`, `[`, `]`), so every format made from it shows every
character the model or the writer wrote, and the only pictures in an article are its figures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


def one_line(text: str) -> str:
    return " ".join(str(text).split())



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


def escape_chunk(chunk: str) -> str:
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
class MarkdownState:
    """What earlier blocks of the .md leave open that changes how a later block reads."""

    after_list: bool = False  # an indented chunk after a list continues the list: it is not code


def safe_markdown(text: str, state: MarkdownState) -> str:
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
            out.append(escape_chunk("\n".join(chunk)))
        i = end
    return "\n".join(out)


def md_escape(text: str) -> str:
    """Make text literal in Markdown, on one line (captions, alt texts, titles)."""
    # Backslashes first: every backslash is then doubled, so none can touch the entities.
    return _escape_unsafe(_MD_INLINE_SPECIALS.sub(r"\\\1", one_line(text)))
