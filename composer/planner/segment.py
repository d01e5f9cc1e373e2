"""Split the text a model wrote into blocks: headings stay their own blocks, empty lines go,
chat-template debris and placement tags are stripped, and the first line is dropped when it
only repeats the title."""
from __future__ import annotations

import re
from collections.abc import Sequence

from composer.article import Paragraph

MAX_BLOCKS = 60  # as in the reference: placement prompts tag every block, more would not fit

_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BOLD_LINE = re.compile(r"^(\*\*|__)(.+?)\1:?$")
# Chat-template markers, placement tags, and U+FFFD (a small model emitting bytes that are not
# UTF-8, as SmolLM2 does in Chinese).
_DEBRIS = re.compile(r"<\|[^|>]*\|>|\[UNUSED_TOKEN_\d+\]|</?s>|<Seg\s*\d*>|\ufffd", re.IGNORECASE)
_TITLE_LABEL = re.compile(r"^(title|标题)\s*[:：]\s*", re.IGNORECASE)


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text).strip().lower()


# A sentence end: Latin punctuation followed by a space or the end (so 3.5 is not one), or a
# CJK stop anywhere; closing quotes and brackets belong to the sentence.
_SENTENCE_END = re.compile(r"(?:[.!?](?=[\"'”’)\]]*(?:\s|$))|[。！？…])[\"'”’)\]]*")
_ENDS_CLEANLY = re.compile(r"(?:[.!?:;。！？…])[\"'”’)\]]*$")


def first_sentence(text: str) -> str:
    """Text up to and including its first sentence end (all of it when there is none)."""
    m = _SENTENCE_END.search(text)
    return text[: m.end()] if m else text


def drop_unfinished_sentence(text: str) -> str:
    """A model stopped by its token budget ends mid-sentence: cut back to the last full stop of
    the last paragraph, when that keeps most of it (a cut-off heading or list item stays)."""
    stripped = text.rstrip()
    if not stripped or _ENDS_CLEANLY.search(stripped):
        return stripped
    last_break = stripped.rfind("\n")
    last = stripped[last_break + 1 :]
    ends = [m.end() for m in _SENTENCE_END.finditer(last)]
    if ends and ends[-1] >= len(last) * 0.4:
        return stripped[: last_break + 1] + last[: ends[-1]]
    marked = _classify(last.strip()).is_heading or re.match(r"\s*([-*+]|\d+[.)])\s", last)
    if not ends and (len(last.split()) > 12 or not marked) and last_break > 0 and stripped[:last_break].strip():
        # A broken sentence after other paragraphs (not a heading or list item): drop it, and
        # look again at what is left.
        return drop_unfinished_sentence(stripped[:last_break])
    return stripped


def segment(text: str, title: str = "") -> list[Paragraph]:
    blocks: list[Paragraph] = []
    for raw in text.splitlines():
        line = _DEBRIS.sub("", raw).strip()
        if not line or set(line) <= set("-*_=#"):
            continue
        blocks.append(_classify(line))
    if blocks and title and _norm(_TITLE_LABEL.sub("", blocks[0].text)) == _norm(title):
        blocks = blocks[1:]
    return _fit(blocks, MAX_BLOCKS)


def _classify(line: str) -> Paragraph:
    m = _ATX_HEADING.match(line)
    if m and m.group(2):
        return Paragraph(m.group(2).strip("*_ "), kind="heading", level=len(m.group(1)))
    m = _BOLD_LINE.match(line)
    if m and len(m.group(2).split()) <= 12 and not m.group(2).rstrip().endswith((".", "。")):
        return Paragraph(m.group(2).strip(), kind="heading", level=2)
    return Paragraph(line)


def _fit(blocks: list[Paragraph], limit: int) -> list[Paragraph]:
    """Merge the shortest adjacent pair of paragraphs until the article fits; no text is lost."""
    blocks = list(blocks)
    while len(blocks) > limit:
        best, best_len = None, None
        for i in range(len(blocks) - 1):
            a, b = blocks[i], blocks[i + 1]
            if a.is_heading or b.is_heading:
                continue
            n = len(a.text) + len(b.text)
            if best_len is None or n < best_len:
                best, best_len = i, n
        if best is None:  # only headings left to merge: keep the text, demote them
            i = limit - 1
            merged = " ".join(b.text for b in blocks[i:])
            return blocks[:i] + [Paragraph(merged)]
        a, b = blocks[best], blocks[best + 1]
        blocks[best : best + 2] = [Paragraph(f"{a.text} {b.text}")]
    return blocks


def outline_headings(paragraphs: list[Paragraph], outline: Sequence[str]) -> list[Paragraph]:
    """Headings in the writer's words: a heading the model wrote for an outline point (the same
    words up to case and punctuation, or containing them) is replaced by the point itself."""
    points = {_norm(p): p for p in outline if _norm(p)}
    out = []
    for p in paragraphs:
        if p.is_heading:
            key = _norm(p.text)
            point = points.get(key) or next((v for k, v in points.items() if k in key), None)
            if point is not None:
                p = Paragraph(point, "heading", p.level)
        out.append(p)
    return out
