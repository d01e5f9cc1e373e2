"""Text about the article instead of its subject: a model talking to the writer ("Here is the
article you asked for"), about its own edit ("The article has been edited with all due care"), or
echoing its instructions ("One complete phrase that says what the photo shows"). Such text is
never part of an article, whatever the materials say, so it is always flagged.
"""
from __future__ import annotations

import re

_DOC = (r"(?:article|essay|piece|post|blog(?:\s+post)?|text|paragraphs?|draft|caption|captions|outline|notes|edit"
        r"|summary)")
_PATTERNS = [
    rf"\b(?:this|the|our|my|your|following|above|below|new|revised|edited|shortened|expanded)\s+{_DOC}\b"
    r"(?!\s+(?:of|about|on)\s+(?:the\s+)?(?:garden|museum|exhibition))",
    rf"\bin\s+this\s+{_DOC}\b",
    r"\bhere\s+(?:is|are)\s+(?:the|your|a|an|my)\b",
    r"\bas\s+(?:you\s+)?(?:requested|asked|instructed)\b",
    r"\b(?:i|we)\s+(?:have|hope|will|would|am|are going to)\b",
    r"\b(?:read\s+and\s+enjoy|enjoy\s+reading|happy\s+reading|thank\s+you\s+for\s+reading)\b",
    r"\byour\s+(?:edit|request|instructions?|notes|materials|outline|article|writer)\b",
    r"\bthe\s+(?:writer|author|editor|reader|instructions?|materials|prompt|model)\b",
    r"\b(?:one\s+complete\s+phrase|says\s+what\s+the\s+photo\s+shows|write\s+(?:a|one|the)\s+caption)\b",
    r"\b(?:word\s+count|words\s+long|no\s+more\s+than\s+\d+\s+words)\b",
    r"^\s*(?:your\s+edit|caption|title|heading|answer|note)\s*:",
    r"本文|这篇文章|文章如下|以下是|希望你喜欢|您的要求",
]
_META = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def meta_span(sentence: str) -> tuple[int, int] | None:
    """Where a sentence talks about the article, the writer, the edit or the instructions."""
    m = _META.search(sentence)
    return (m.start(), m.end()) if m else None
