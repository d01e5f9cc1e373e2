"""The whole check of an article: its claims (numbers, dates, names, quotes) and the attribution
of each sentence, merged into one list of flags a writer reads, and stored with the article.

`metadata["claims"]` keeps the flags (CheckResult.to_dict: what the editor marks and `check`
prints); `metadata["attribution"]` keeps every sentence's verdict and the passages it cites, so
that an editor can show the source of a supported sentence.
"""
from __future__ import annotations

from typing import Any

from composer.article import Article, Figure
from composer.check.attribution import Grounding, SentenceAttribution
from composer.check.claims import CheckResult, Flag, FlagKind, Sources, check_claims, check_text, sentences, texts_of
from composer.check.semantic import TextEmbedder, default_embedder

_USE_DEFAULT: Any = object()


def grounding_of(article: Article, embedder: TextEmbedder | None | Any = _USE_DEFAULT) -> Grounding:
    """The passages of the request stored with the article; the shipped embedder unless told."""
    if embedder is _USE_DEFAULT:
        embedder = default_embedder()
    return Grounding.of_request(article.metadata.get("request"), embedder)


def attribute_article(article: Article, grounding: Grounding | None = None) -> list[SentenceAttribution]:
    """Every sentence of every paragraph, heading and caption, in order. A caption may also say
    what its picture is known to show (metadata["descriptions"], by content hash)."""
    grounding = grounding or grounding_of(article)
    if not grounding.has_materials:
        return []
    descriptions = article.metadata.get("descriptions") or {}
    out = []
    for i, text, where in texts_of(article):
        block = article.blocks[i]
        photo = descriptions.get(block.image.sha256) if isinstance(block, Figure) and block.image else None
        if isinstance(photo, str) and photo.strip():
            with_photo = Grounding.of_request(article.metadata.get("request"), grounding.embedder, [photo])
            out += with_photo.attribute(text, i, where)
        else:
            out += grounding.attribute(text, i, where)
    return out


def sentence_flags(attributions: list[SentenceAttribution], claims: tuple[Flag, ...]) -> list[Flag]:
    """A flag for each unsupported sentence that no claim flag already explains."""
    explained = {(f.block, f.sentence_start) for f in claims}
    out = []
    for a in attributions:
        if a.status != "unsupported" or (a.block, a.start) in explained:
            continue
        start, end = a.span or (0, len(a.text))
        kind: FlagKind = "meta" if a.reason.startswith("talks about") else "sentence"
        out.append(Flag(a.block, a.where, a.text, a.start, start, end, a.text[start:end], kind, a.reason, a.index))
    return out


def check_article(article: Article, sources: Sources | None = None, grounding: Grounding | None = None) -> CheckResult:
    """Claims and sentences together, flags in reading order."""
    return _check(article, sources, grounding)[0]


def _check(article: Article, sources: Sources | None,
           grounding: Grounding | None) -> tuple[CheckResult, list[SentenceAttribution], Grounding | None]:
    claims = check_claims(article, sources)
    if claims.note:  # no materials: nothing to attribute either
        return claims, [], None
    grounding = grounding or grounding_of(article)
    attributions = attribute_article(article, grounding)
    # A name the materials hold in another form is not a false claim ("America", "United States"),
    # nor is a caption's word that its picture's description holds.
    descriptions = article.metadata.get("descriptions") or {}

    def photo_says(flag: Flag) -> bool:
        block = article.blocks[flag.block]
        photo = descriptions.get(block.image.sha256, "") if isinstance(block, Figure) and block.image else ""
        return isinstance(photo, str) and flag.claim.casefold() in photo.casefold()

    kept = tuple(f for f in claims.flags
                 if not photo_says(f) and (f.kind != "name" or not grounding.same_name(f.claim)))
    flags = sorted([*kept, *sentence_flags(attributions, kept)],
                   key=lambda f: (f.block, f.sentence_start, f.start))
    return (CheckResult(tuple(flags), claims.claims, claims.words, None, claims.labels), attributions, grounding)


def annotate(article: Article, sources: Sources | None = None, grounding: Grounding | None = None) -> Article:
    """A new Article whose metadata holds the check: `claims` (the flags) and `attribution`."""
    result, attributions, used = _check(article, sources, grounding)
    metadata = {**article.metadata, "claims": result.to_dict()}
    if used is not None:
        metadata["attribution"] = {
            "passages": [{"id": p.id, "source": p.source, "text": p.text} for p in used.passages],
            "sentences": [a.to_dict() for a in attributions],
            "counts": {s: sum(a.status == s for a in attributions) for s in ("supported", "no_claim", "unsupported")},
        }
    else:
        metadata.pop("attribution", None)
    return Article(article.title, article.blocks, metadata)


def attribution_of(article: Article) -> tuple[list[SentenceAttribution], dict[int, str]]:
    """The stored attribution (written by annotate): the sentences and the passages' texts by id."""
    stored = article.metadata.get("attribution") or {}
    sentences = [SentenceAttribution.from_dict(d) for d in stored.get("sentences") or ()]
    return sentences, {int(p["id"]): str(p["text"]) for p in stored.get("passages") or ()}


def keep_supported(text: str, sources: Sources, grounding: Grounding) -> str:
    """`text` without its unsupported sentences: a claim the sources lack, or no support found
    even in the strict sense (no word of its own); sentences that claim nothing stay, and every
    other character is kept as it was."""
    flagged = {f.sentence_start for f in check_text(text, sources)[0]}
    if grounding.has_materials:
        flagged |= {a.start for a in grounding.attribute(text, strict=True) if a.status == "unsupported"}
    return "".join(text[a:b] + text[b:b + len(text[b:]) - len(text[b:].lstrip())]
                   for a, b in sentences(text) if a not in flagged).strip()


def note_passages(article: Article) -> set[int]:
    """The ids of the stored passages that are the writer's notes or photos (not the title or
    outline): what a sentence's source may be shown as."""
    stored = article.metadata.get("attribution") or {}
    return {int(p["id"]) for p in stored.get("passages") or () if p.get("source") in ("materials", "photo")}
