"""Every sentence of an article traced to the writer's material, or flagged.

The sources (title, outline, materials) are cut into passages, one sentence each. Each article
sentence (paragraphs, headings, captions) is then

- *supported*: it cites the passages it rests on, with a score;
- *no claim*: it asserts nothing checkable (a connective, an opinion);
- *unsupported*: meta text about the article, words that no passage holds in any form, a
  quantity word ("all", "millions") or a negation its passages do not have, or no passage
  close enough in words and meaning.

Passages are scored for a sentence by two matches, combined: lexical (BM25 over stemmed terms,
and the share of the sentence's terms the passage holds) and semantic (cosine of MiniLM
sentence vectors). A word the sources lack is forgiven when its vector is close to a word they
have (a synonym: "feed" for "eat"). Chinese, which the embedder does not read, is matched by
character pairs alone. The thresholds were set on the labelled set in tests/data/grounding/
(benchmarks/grounding.py prints the precision and recall they give).

Written here rather than taken from a library: BM25 over a few dozen passages is a dozen lines
of arithmetic on terms this module already normalises; the decision on top of the scores is
this tool's own.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from composer.check.meta import meta_span
from composer.check.semantic import TextEmbedder
from composer.check.terms import NEGATIONS, QUANTIFIERS, Term, is_chinese, stem, terms

Status = Literal["supported", "no_claim", "unsupported"]
Where = Literal["paragraph", "heading", "caption"]
Source = Literal["title", "outline", "materials", "photo"]

# Quantity words whose change a check must see (as stems): "some" → "all" is not a paraphrase.
STRONG_QUANTITIES = frozenset(stem(w) for w in """all every always never none millions billions thousands hundreds
dozens several entire whole countless everyone everything nobody nothing""".split())
NEGATION_STEMS = frozenset(stem(w) for w in NEGATIONS) | {"n't"}
QUANTITY_STEMS = frozenset(stem(w) for w in QUANTIFIERS) | NEGATION_STEMS
# Words that judge or join rather than state: a sentence made only of these claims nothing.
OPINION_STEMS = frozenset(stem(w) for w in """look closer close let see turn next now first finally pleasure
wonderful beautiful amazing delight delightful joy lovely great fascinating remarkable interesting truly really
indeed simply perhaps watch enjoy story journey world thing things way ways time moment worth charming special
magic magical true certainly sure glad happy sight find discover explore begin start end conclusion hard easy
imagine gentle gentler good better best hardest easiest real part wait waiting done go come turn people flew
reward rewarding satisfying pleasant nice perfect lucky worthwhile""".split())
# Sentences that ask or lead on rather than state (a question asserts nothing).
_CONNECTIVE = re.compile(r"\?\s*$|^\s*(?:now\s+)?(?:let\s+us|let's|we\s+(?:now\s+)?(?:turn|look|come|move)|next,|"
                         r"but\s+(?:what|where|how|why)|once\s+that\s+is\s+done)\b|[？]\s*$|下面我们|说到|接下来|让我们",
                         re.IGNORECASE)
_ZH_OPINION = re.compile(r"享受|难得|美好|令人|真是|不妨|值得一")

# Opposites: a sentence that says one where its passage says the other contradicts it, however
# many words they share ("on the tops of leaves, far from" against "on the undersides ... close to").
_OPPOSITES = [("far", "close"), ("far", "near"), ("top", "undersid"), ("top", "bottom"), ("hot", "cool"),
              ("hot", "cold"), ("warm", "cold"), ("before", "after"), ("first", "last"), ("earli", "later"),
              ("early", "late"), ("more", "less"), ("more", "fewer"), ("larger", "smaller"), ("higher", "lower"),
              ("increas", "decreas"), ("alway", "never"), ("orbit", "suborbit"), ("insid", "outsid"),
              ("day", "night"), ("male", "femal"), ("adult", "larva"), ("young", "old"), ("wet", "dri"),
              ("open", "close"), ("arriv", "leav"), ("succeed", "fail"), ("surviv", "die"), ("return", "die")]
OPPOSITES: dict[str, frozenset[str]] = {}
for _a, _b in _OPPOSITES:
    OPPOSITES[_a] = OPPOSITES.get(_a, frozenset()) | {_b}
    OPPOSITES[_b] = OPPOSITES.get(_b, frozenset()) | {_a}
# Chinese quantity words ("all", "every", "dozens of") that a passage must have for a sentence to.
ZH_QUANTITIES = ("所有", "全部", "一切", "总是", "从不", "从来", "几十", "几百", "数百", "数千", "上千", "无数", "每一")

# Thresholds, calibrated on tests/data/grounding (see benchmarks/grounding.py).
MIN_SUPPORT = 0.3  # combined score of the best passage below which nothing supports a sentence
SYNONYM = 0.7  # word-vector cosine at which a word the sources lack counts as one they have
# A sentence this close in meaning to a passage may use a few words of its own (a paraphrase's
# verbs: "fixes itself" for "attaches itself"): one per ALLOWANCE_PER content words.
CLOSE = 0.7
ALLOWANCE_PER = 4
LEXICAL_WEIGHT = 0.5  # the rest is the sentence vectors' cosine
NAME_SYNONYM = 0.75  # a name is the same place or body as one of the sources' at this cosine
ZH_MAX_NOVEL = 0.5  # share of a Chinese sentence's character pairs the sources may lack
ZH_MIN_COVERAGE = 0.3
CITES = 2  # passages cited per supported sentence


@dataclass(frozen=True)
class Passage:
    id: int
    source: Source
    text: str
    stems: frozenset[str]
    all_stems: frozenset[str]  # with quantity and negation words


@dataclass(frozen=True)
class Citation:
    passage: int
    score: float


@dataclass(frozen=True)
class SentenceAttribution:
    """One sentence of one block. `start`/`end` index the block's text; `span` (inside the
    sentence) is the false part of an unsupported one, for an editor to mark."""

    block: int
    where: Where
    index: int  # the sentence's number in its block, from 1
    start: int
    end: int
    text: str
    status: Status
    cites: tuple[Citation, ...] = ()
    reason: str = ""
    span: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block, "where": self.where, "index": self.index, "start": self.start,
                "end": self.end, "text": self.text, "status": self.status, "reason": self.reason,
                "cites": [[c.passage, round(c.score, 3)] for c in self.cites],
                "span": list(self.span) if self.span else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SentenceAttribution:
        span = d.get("span")
        return cls(int(d["block"]), d["where"], int(d["index"]), int(d["start"]), int(d["end"]), str(d["text"]),
                   d["status"], tuple(Citation(int(p), float(s)) for p, s in d.get("cites") or ()),
                   str(d.get("reason") or ""), (int(span[0]), int(span[1])) if span else None)


@dataclass
class Grounding:
    """The passages of one request, with what scoring needs, built once per check."""

    passages: tuple[Passage, ...]
    embedder: TextEmbedder | None = None
    vectors: np.ndarray | None = None
    vocabulary: tuple[str, ...] = ()  # the sources' words, for synonym look-ups
    vocabulary_vectors: np.ndarray | None = None
    idf: dict[str, float] = field(default_factory=dict)
    average_length: float = 1.0
    stems: frozenset[str] = frozenset()

    @classmethod
    def of(cls, title: str = "", outline: Sequence[str] = (), materials: str = "",
           embedder: TextEmbedder | None = None, photos: Sequence[str] = ()) -> Grounding:
        """`photos`: what the writer's photos show, in words (a text may say what they show)."""
        from composer.check.claims import sentences

        pieces: list[tuple[Source, str]] = []
        if title.strip():
            pieces.append(("title", title.strip()))
        pieces += [("outline", o.strip()) for o in outline if o.strip()]
        pieces += [("materials", materials[a:b]) for a, b in sentences(materials)]
        pieces += [("photo", d.strip()) for d in photos if d.strip()]
        passages = tuple(Passage(i, src, text, frozenset(t.stem for t in terms(text)) - QUANTITY_STEMS,
                                 frozenset(t.stem for t in terms(text)))
                         for i, (src, text) in enumerate(pieces))
        n = max(1, len(passages))
        df = Counter(s for p in passages for s in p.stems)
        idf = {s: math.log(1 + (n - d + 0.5) / (d + 0.5)) for s, d in df.items()}
        grounding = cls(passages, embedder, idf=idf,
                        average_length=max(1.0, sum(len(p.stems) for p in passages) / n),
                        stems=frozenset(s for p in passages for s in p.all_stems))
        if embedder is not None and passages and not is_chinese(" ".join(p.text for p in passages)):
            grounding.vectors = embedder.embed([p.text for p in passages])
            words = sorted({t.word.lower() for p in passages for t in terms(p.text)} | set(names_in(passages)))
            grounding.vocabulary = tuple(words)
            grounding.vocabulary_vectors = embedder.embed(words) if words else None
        return grounding

    @classmethod
    def of_request(cls, request: dict[str, Any] | None, embedder: TextEmbedder | None = None,
                   photos: Sequence[str] = ()) -> Grounding:
        from composer.check.claims import request_texts

        return cls.of(*request_texts(request), embedder=embedder, photos=photos)

    @property
    def has_materials(self) -> bool:
        return any(p.source == "materials" for p in self.passages)

    # --- scoring ---------------------------------------------------------------------------
    def _bm25(self, query: Sequence[str], passage: Passage, k1: float = 1.2, b: float = 0.75) -> float:
        length = len(passage.stems) or 1
        norm = k1 * (1 - b + b * length / self.average_length)
        return sum(self.idf.get(s, 0.0) * (k1 + 1) / (1 + norm) for s in set(query) if s in passage.stems)

    def scores(self, sentence: str, content: Sequence[str]) -> list[float]:
        """The combined score of every passage for a sentence whose content stems are `content`."""
        return self._scores(sentence, content)[0]

    def _scores(self, sentence: str, content: Sequence[str]) -> tuple[list[float], list[float]]:
        """Combined scores and the sentence vectors' cosines (zeros without an embedder)."""
        if not self.passages:
            return [], []
        wanted = set(content)
        coverage = np.array([len(wanted & p.stems) / max(1, len(wanted)) for p in self.passages])
        bm25 = np.array([self._bm25(content, p) for p in self.passages])
        top = bm25.max() if bm25.size else 0.0
        lexical = 0.5 * coverage + 0.5 * (bm25 / top if top > 0 else bm25)
        if self.vectors is None or self.embedder is None:
            return list(lexical), [0.0] * len(self.passages)
        cosine = np.clip(self.vectors @ self.embedder.embed([sentence])[0], 0, 1)
        return list(LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * cosine), list(cosine)

    def synonyms(self, words: Sequence[str]) -> dict[str, tuple[str, float]]:
        """Each word's nearest word of the sources by vector, and how near."""
        if self.embedder is None or self.vocabulary_vectors is None or not words:
            return {}
        sims = self.embedder.embed(list(words)) @ self.vocabulary_vectors.T
        best = sims.argmax(axis=1)
        return {w: (self.vocabulary[j], float(sims[i, j])) for i, (w, j) in enumerate(zip(words, best))}

    # --- the decision ------------------------------------------------------------------------
    def attribute(self, text: str, block: int = 0, where: Where = "paragraph",
                  strict: bool = False) -> list[SentenceAttribution]:
        """Each sentence of `text`. `strict`: no word of its own is allowed even in a close
        paraphrase (for choosing what a small model's draft keeps, where a lost paraphrase costs
        little and a kept invention costs the writer's trust)."""
        from composer.check.claims import sentences

        out = []
        for index, (a, b) in enumerate(sentences(text), start=1):
            out.append(self.sentence(text[a:b], block, where, index, a, strict))
        return out

    def sentence(self, sentence: str, block: int, where: Where, index: int, start: int,
                 strict: bool = False) -> SentenceAttribution:
        def result(status: Status, reason: str = "", span: tuple[int, int] | None = None,
                   cites: tuple[Citation, ...] = ()) -> SentenceAttribution:
            return SentenceAttribution(block, where, index, start, start + len(sentence), sentence, status, cites,
                                       reason, span)

        meta = meta_span(sentence)
        if meta:
            return result("unsupported", "talks about the article, not its subject", meta)
        found = terms(sentence)
        content = [t for t in found if t.stem not in QUANTITY_STEMS]
        if not content or all(t.stem in OPINION_STEMS for t in content) or _CONNECTIVE.search(sentence):
            return result("no_claim")
        if is_chinese(sentence):
            return self._chinese(sentence, content, result)
        scores, cosines = self._scores(sentence, [t.stem for t in content])
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:CITES]
        cites = tuple(Citation(self.passages[i].id, float(scores[i])) for i in ranked if scores[i] > 0)
        near = set().union(*(self.passages[c.passage].all_stems for c in cites)) if cites else set()
        novel = self._novel([t for t in content if t.stem not in self.stems and t.stem not in OPINION_STEMS])
        if novel and not strict and max(cosines, default=0.0) >= CLOSE and len(novel) <= len(content) // ALLOWANCE_PER:
            novel = []  # a close paraphrase, in a few words of its own
        if novel and all(t.stem in OPINION_STEMS or _opinion_word(t) for t in novel):
            novel = []
        if novel:
            shown = ", ".join(f"“{w}”" for w in dict.fromkeys(t.word for t in novel))
            return result("unsupported", f"{shown} {'is' if len(novel) == 1 else 'are'} not in the materials",
                          (novel[0].start, novel[-1].end), cites)
        opposed = [t for t in found if t.stem not in near and OPPOSITES.get(t.stem, frozenset()) & near]
        if opposed:
            other = sorted(OPPOSITES[opposed[0].stem] & near)[0]
            word = next((w.word for c in cites for w in terms(self.passages[c.passage].text) if w.stem == other), other)
            return result("unsupported", f"“{opposed[0].word}”: the materials say “{word}”",
                          (opposed[0].start, opposed[0].end), cites)
        changed = [t for t in found if t.stem in STRONG_QUANTITIES | NEGATION_STEMS and t.stem not in near]
        if changed:
            kind = "negation" if changed[0].stem in NEGATION_STEMS else "quantity"
            return result("unsupported", f"“{changed[0].word}”: the materials do not say this ({kind})",
                          (changed[0].start, changed[0].end), cites)
        if not cites or cites[0].score < MIN_SUPPORT:
            return result("unsupported", "no support in the materials", (0, len(sentence)), cites)
        return result("supported", cites=cites)

    def _novel(self, missing: list[Term]) -> list[Term]:
        """The words the sources lack that no word of theirs means either."""
        if not missing:
            return []
        near = self.synonyms([_bare(t.word) for t in missing])
        return [t for t in missing if near.get(_bare(t.word), ("", 0.0))[1] < SYNONYM]

    def same_name(self, name: str) -> bool:
        """Whether the sources hold this name in another form ("America" for "the United States")."""
        found = self.synonyms([_bare(name)]).get(_bare(name))
        return found is not None and found[1] >= NAME_SYNONYM

    def _chinese(self, sentence: str, content: list[Term], result) -> SentenceAttribution:
        pairs = [t for t in content if len(t.stem) == 2]
        if not pairs or _ZH_OPINION.search(sentence):
            return result("no_claim")
        scores = self.scores(sentence, [t.stem for t in pairs])
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:CITES]
        cites = tuple(Citation(self.passages[i].id, float(scores[i])) for i in ranked if scores[i] > 0)
        novel = [t for t in pairs if t.stem not in self.stems]
        near = set().union(*(self.passages[c.passage].stems for c in cites)) if cites else set()
        coverage = sum(t.stem in near for t in pairs) / len(pairs)
        cited = "".join(self.passages[c.passage].text for c in cites)
        quantity = next((q for q in ZH_QUANTITIES if q in sentence and q not in cited), None)
        if quantity:
            at = sentence.index(quantity)
            return result("unsupported", f"“{quantity}”: the materials do not say this (quantity)",
                          (at, at + len(quantity)), cites)
        if len(novel) / len(pairs) > ZH_MAX_NOVEL or coverage < ZH_MIN_COVERAGE:
            span = (novel[0].start, novel[-1].end) if novel else (0, len(sentence))
            return result("unsupported", "no support in the materials", span, cites)
        return result("supported", cites=cites)


_EVALUATIVE = re.compile(r"(?:est|ful|ous|ly)$")


def _opinion_word(term: Term) -> bool:
    """Superlatives and manner words ("hardest", "delightful", "truly") judge rather than state."""
    return bool(_EVALUATIVE.search(term.word.lower())) and term.word.lower() not in {"first", "west", "east"}


_CAPITALISED_RUN = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+|the\s+|de\s+|van\s+)?[A-Z][\w'’-]*)+")


def names_in(passages: Sequence[Passage]) -> list[str]:
    """Runs of two or more capitalised words in the sources ("United States", "Van Allen"), so that
    a name written another way can meet them whole."""
    return [_bare(m.group(0)) for p in passages for m in _CAPITALISED_RUN.finditer(p.text)]


def _bare(word: str) -> str:
    """A word or name as its vector is looked up: lower case, no possessive."""
    word = word.lower().replace("’", "'")
    return word[:-2] if word.endswith("'s") else word
