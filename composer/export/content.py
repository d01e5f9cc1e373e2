"""What every format shows of an article besides its body, computed in one place: the byline,
each figure's caption and alt text, and model text made fit for XML.

A figure's caption and alt text are read only through figure_caption and figure_alt, so whatever
labels a picture (a generated one, say) is added here once and appears in every format.
"""
from __future__ import annotations

import datetime as _dt
import re

from composer.article import Article, Figure
from composer.export.escaping import one_line
from composer.imagegen import provenance

# What XML 1.0 cannot hold (C0 controls other than tab and line breaks, lone surrogates, the two
# non-characters): .docx, WordPress markup and the PDF's HTML could not carry it, and a parser
# would drop it or fail. Each is shown as its Unicode Control Picture (␀, ␇, ␛) or U+FFFD, so
# the reader sees one visible character where the model wrote one invisible one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _picture(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return chr(0x2400 + code) if code < 0x20 else "\ufffd"


def visible_controls(text: str) -> str:
    return _NOT_XML.sub(_picture, text)


def figure_caption(block: Figure) -> str:
    """The caption every format shows; a generated picture's opens with "Generated illustration"
    (composer.imagegen.provenance), which the writer can reword around but not remove."""
    return one_line(provenance.caption_text(block))


def figure_alt(block: Figure) -> str:
    return one_line(block.alt or block.caption)


def article_date(article: Article) -> str:
    return str((article.metadata or {}).get("date") or _dt.date.today().isoformat())


def written_with(article: Article) -> str:
    """"written with MODEL", in the article's language: a Chinese article's byline is Chinese."""
    model = (article.metadata or {}).get("model")
    if not model:
        return ""
    return f"由 {model} 撰写" if (article.metadata or {}).get("language") == "zh" else f"written with {model}"


def byline(article: Article) -> str:
    """"2026-12-01 · written with MODEL": under the title in every format."""
    return " · ".join(bit for bit in (article_date(article), written_with(article)) if bit)
