"""Turn a model's caption answer into a usable caption, or derive one from the paragraph."""
from __future__ import annotations

import re

from composer.planner.segment import first_sentence

MAX_WORDS = 16
MAX_CHARS = 120
_LABEL = re.compile(r"^\s*(caption|photo|image|picture|title|标题|图片)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’「」『』`*_"


def parse_caption(answer: str, closing_quote: str | None = None) -> str | None:
    """The caption in an answer, or None when there is nothing usable. With `closing_quote`
    (the xcomposer prefix opens a quote), the caption ends at that quote."""
    text = answer or ""
    if closing_quote and closing_quote in text:
        text = text.split(closing_quote, 1)[0]
    lines = [ln for ln in (re.sub(r"<[^>]{0,40}>", "", raw).strip() for raw in text.splitlines()) if ln]
    if not lines:
        return None
    line = _LABEL.sub("", lines[0]).strip().strip(_QUOTES).strip()
    line = re.sub(r"\s+", " ", line)
    first = first_sentence(line).strip(_QUOTES + " ")
    if len(first.split()) >= 3 or (first and not first.isascii()):
        line = first  # a caption is one line of one sentence; models run on
    if not any(ch.isalpha() for ch in line) or len(line) < 3:
        return None
    return shorten(line)


_CLAUSE_END = re.compile(r"[,;:—–]\s")


def shorten(text: str) -> str:
    """At most MAX_WORDS words and MAX_CHARS characters. A cut caption ends at its last clause
    boundary when that keeps most of it, else with an ellipsis, never mid-phrase silently."""
    original = text
    words = text.split()
    if len(words) > MAX_WORDS:
        text = " ".join(words[:MAX_WORDS])
    if len(text) > MAX_CHARS - 1:
        text = text[: MAX_CHARS - 1].rsplit(" ", 1)[0] if " " in text[: MAX_CHARS - 1] else text[: MAX_CHARS - 1]
    if text == original:
        return text.rstrip(" ,;:-")
    boundaries = [m.start() for m in _CLAUSE_END.finditer(text + " ")]
    if boundaries and boundaries[-1] >= len(text) // 2:
        return text[: boundaries[-1]].rstrip(" ,;:-")
    return text.rstrip(" ,;:-—–") + "…"


def caption_from_paragraph(paragraph: str) -> str:
    """The rule when the model's caption is unusable: the paragraph's first sentence, shortened."""
    first = first_sentence(paragraph.strip()) or paragraph
    return shorten(first.strip(_QUOTES + " ")) or "Illustration"
