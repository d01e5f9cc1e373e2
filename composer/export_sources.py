"""The sources of an article, for export: the writer's passages that its sentences rest on.

Each paragraph (and caption) gets the numbers of the passages its supported sentences cite,
and the article ends with a "Sources" list quoting each passage once, numbered in the order
they are first cited. Read from the attribution stored with the article (composer.check), so
what is exported is what the editor showed. Passage text is the writer's: the exporters escape
it like any other text.
"""
from __future__ import annotations

from dataclasses import dataclass

from composer.article import Article
from composer.check import attribution_of, note_passages


@dataclass(frozen=True)
class SourceNotes:
    markers: dict[int, tuple[int, ...]]  # block → the numbers of the passages it cites
    passages: tuple[str, ...]  # number n is passages[n - 1]

    def __bool__(self) -> bool:
        return bool(self.passages)


def source_notes(article: Article) -> SourceNotes:
    sentences, texts = attribution_of(article)
    # A heading cites itself (the outline); only what the writer wrote as notes, or a photo, is a source.
    notes = note_passages(article)
    texts = {i: t for i, t in texts.items() if i in notes}
    numbers: dict[int, int] = {}
    markers: dict[int, list[int]] = {}
    for s in sentences:
        if s.status != "supported" or not s.cites:
            continue
        # The best source among the notes: one per sentence keeps the list short.
        passage = next((c.passage for c in s.cites if c.passage in texts), None)
        if passage is None or s.where == "heading":
            continue
        n = numbers.setdefault(passage, len(numbers) + 1)
        block = markers.setdefault(s.block, [])
        if n not in block:
            block.append(n)
    ordered = sorted(numbers, key=numbers.__getitem__)
    return SourceNotes({b: tuple(ns) for b, ns in markers.items()}, tuple(texts[p] for p in ordered))


def marker_text(numbers: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, numbers)) + "]" if numbers else ""
