"""The article checked against the writer's materials, with no model: claims (numbers, dates,
names, quotes: check/claims.py) and the attribution of every sentence to the passages that
support it (check/attribution.py), merged in check/article_check.py."""
from composer.check.article_check import (
    annotate,
    attribute_article,
    attribution_of,
    check_article,
    grounding_of,
    keep_supported,
    note_passages,
)
from composer.check.attribution import Grounding, SentenceAttribution
from composer.check.claims import (
    NO_MATERIALS_NOTE,
    CheckResult,
    Claim,
    ClaimKind,
    Date,
    Flag,
    FlagKind,
    Sources,
    block_labels,
    check_claims,
    check_text,
    claims_in,
    flag_lines,
    flags_of,
    marked_sentences,
    sentences,
    summary_line,
    texts_of,
)

__all__ = [
    "NO_MATERIALS_NOTE", "CheckResult", "Claim", "ClaimKind", "Date", "Flag", "FlagKind", "Grounding",
    "SentenceAttribution", "Sources", "annotate", "attribute_article", "attribution_of", "block_labels",
    "check_article", "check_claims", "check_text", "claims_in", "flag_lines", "flags_of", "grounding_of",
    "keep_supported", "marked_sentences", "note_passages", "sentences", "summary_line", "texts_of",
]
