"""The labelled grounding set (tests/data/grounding/*.json) and how well the check's flags match
its labels: precision and recall of the flags on the sentences labelled unsupported.

Each topic holds a request (title, outline, materials) and sentences labelled supported,
unsupported or no_claim, with a kind (paraphrase, invented-number, contradiction, meta, ...).
Each sentence is checked as its own block of one article (a caption as a figure's caption), so
what is measured is exactly what the editor and `check` show. Shared by benchmarks/grounding.py
and the tests.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from composer.article import Article, Figure, Paragraph

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "grounding"


@dataclass(frozen=True)
class Labelled:
    topic: str
    text: str
    label: str  # supported | unsupported | no_claim
    kind: str
    note: str = ""


@dataclass
class Topic:
    name: str
    request: dict
    sentences: list[Labelled]

    def article(self) -> Article:
        """Every labelled sentence as one block: a caption under a figure, else a paragraph."""
        blocks = tuple(Figure(None, caption=s.text) if s.kind == "caption" or _looks_like_caption(s)
                       else Paragraph(s.text) for s in self.sentences)
        return Article(self.request.get("title", ""), blocks, {"request": self.request})


def _looks_like_caption(s: Labelled) -> bool:
    return not s.text.rstrip().endswith((".", "!", "?", "。", "！", "？")) and len(s.text.split()) <= 12 and \
        s.label != "no_claim" and "heading" not in s.note.lower() and s.kind != "verbatim"


def load_topics(folder: Path = DATA) -> list[Topic]:
    topics = []
    for path in sorted(folder.glob("*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        request = {k: d[k] for k in ("title", "outline", "materials", "language") if k in d}
        topics.append(Topic(path.stem, request, [Labelled(path.stem, s["text"], s["label"], s["kind"],
                                                          s.get("note", "")) for s in d["sentences"]]))
    return topics


@dataclass
class Report:
    flagged: list[tuple[Labelled, bool, str]] = field(default_factory=list)  # sentence, flagged?, reason

    @property
    def true_positives(self) -> int:
        return sum(f and s.label == "unsupported" for s, f, _ in self.flagged)

    @property
    def precision(self) -> float:
        flagged = sum(f for _, f, _ in self.flagged)
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        unsupported = sum(s.label == "unsupported" for s, _, _ in self.flagged)
        return self.true_positives / unsupported if unsupported else 1.0

    def recall_by_kind(self) -> dict[str, tuple[int, int]]:
        found: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for s, f, _ in self.flagged:
            if s.label == "unsupported":
                total[s.kind] += 1
                found[s.kind] += f
        return {k: (found[k], total[k]) for k in sorted(total)}


def evaluate(topics: list[Topic]) -> Report:
    from composer.check import check_article

    report = Report()
    for topic in topics:
        article = topic.article()
        result = check_article(article)
        for i, s in enumerate(topic.sentences):
            flags = result.flags_for(i)
            report.flagged.append((s, bool(flags), "; ".join(f.reason for f in flags)))
    return report
