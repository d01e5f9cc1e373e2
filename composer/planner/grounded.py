"""Materials-first writing: each part of the article is written from the writer's own passages.

A small model asked for a whole article (or even for one outline point with all the notes in
view) invents: most of its sentences say things the notes do not. So, for small models (and
for any model when the request asks for it):

1. the material passages that belong to each outline point are chosen first, by the check's
   own scores (composer.check.attribution): each passage goes to the point it matches best,
   so every passage is used once and each part is about its heading;
2. the model writes that part from those passages only, asked for about as many words as they
   hold;
3. the sentences of its answer that the check finds unsupported (or that are about the article
   itself) are dropped; where that leaves the part short, the part's passages that no kept
   sentence rests on follow, as the writer wrote them.

The article is as long as the materials support; the writer is told when that is less than the
length asked ("Your notes support about 180 words").
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from composer.check import Grounding, Sources, keep_supported
from composer.check.attribution import Passage
from composer.planner.request import ComposeRequest

# The writer's uncited passages follow the model's kept text unless it is this long already
# (as a share of the passages' length): more would repeat what it says in other words.
MIN_KEPT_SHARE = 0.4
# How much a passage's place in the notes counts against its words, when parts are chosen.
ORDER_WEIGHT = 0.15
# An article may run this much longer than its notes (joining words, the headings' lead-ins).
LENGTH_SLACK = 1.3


@dataclass(frozen=True)
class Part:
    point: str  # the outline point (the title when there is no outline)
    passages: tuple[Passage, ...]

    @property
    def words(self) -> int:
        return sum(len(p.text.split()) for p in self.passages)

    @property
    def notes(self) -> list[str]:
        return [p.text for p in self.passages]


def uses_materials_first(request: ComposeRequest, small: bool) -> bool:
    if not request.materials.strip():
        return False
    return request.materials_first if request.materials_first is not None else small


def plan_parts(request: ComposeRequest, grounding: Grounding) -> list[Part]:
    """The outline's points, each with the material passages that belong to it, in the
    materials' order. A point that no passage matches best gets none: the notes say nothing
    about it, and the writer is told so rather than given a part made up or repeated."""
    points = list(request.outline) or [request.title]
    # The writer's photos, in words, are notes too: a part may be about what a photo shows.
    materials = [p for p in grounding.passages if p.source in ("materials", "photo")]
    if not materials:
        return [Part(point, ()) for point in points]
    from composer.check.terms import terms

    # How well each passage matches each point, plus a little for standing where the point stands
    # in the outline: notes are usually written in the order the article will tell them.
    scores = [grounding.scores(point, [t.stem for t in terms(point)]) for point in points]
    by_id = {p.id: k for k, p in enumerate(grounding.passages)}

    def fit(i: int, j: int) -> float:
        here, there = i / max(1, len(points) - 1), j / max(1, len(materials) - 1)
        return scores[i][by_id[materials[j].id]] + ORDER_WEIGHT * (1 - abs(here - there))

    owner = {p.id: max(range(len(points)), key=lambda i: fit(i, j)) for j, p in enumerate(materials)}
    return [Part(point, tuple(p for p in materials if owner[p.id] == i)) for i, point in enumerate(points)]


def supported_words(request: ComposeRequest) -> int:
    return len(request.materials.split())


def length_note(request: ComposeRequest) -> str | None:
    """What to tell a writer whose notes hold less than the length asked."""
    words = supported_words(request)
    if request.language == "zh":
        chars = len("".join(request.materials.split()))
        if request.length > LENGTH_SLACK * chars:
            return f"你的素材大约支持 {chars} 字的文章；请补充素材，或换用更大的模型。"
        return None
    if request.length > LENGTH_SLACK * words:
        return (f"Your notes support about {words} words (you asked for {request.length}); "
                "add notes or use a larger model for a longer article.")
    return None


def _plain(text: str) -> str:
    return " ".join(text.lower().strip(" #*\"'“”:.").split())


def keep_supported_part(text: str, part: Part, sources: Sources, grounding: Grounding,
                        title: str = "") -> tuple[str, int, bool]:
    """The part's text with its unsupported sentences dropped, how many were dropped, and whether
    the writer's own sentences had to stand in: each passage of the part that no kept sentence
    rests on follows them, as the writer wrote it, so nothing the notes say for this part is lost."""
    from composer.check import sentences

    # A line that only repeats the title or the heading (small models open with one) is not text.
    echoes = {_plain(part.point), _plain(title)} - {""}
    text = "\n".join(line for line in text.splitlines() if _plain(line) not in echoes)
    before = len(sentences(text))
    kept = " ".join(keep_supported(text, sources, grounding).split())
    kept = _without_restatements(kept, grounding)
    dropped = before - (len(sentences(kept)) if kept else 0)
    cited = {c.passage for a in (grounding.attribute(kept) if kept else ()) if a.status == "supported"
             for c in a.cites[:1]}
    missing = [p.text for p in part.passages if p.source == "materials" and p.id not in cited]
    if not missing or len(kept.split()) >= (1 - MIN_KEPT_SHARE) * part.words:
        return kept, dropped, False
    return " ".join(x for x in (kept, join_passages(missing)) if x), dropped, True


def _without_restatements(text: str, grounding: Grounding) -> str:
    """Sentences that rest only on the title or outline ("Ladybirds - your garden's small allies!")
    restate a heading; the part is the notes'."""
    if not text:
        return text
    by_id = {p.id: p for p in grounding.passages}
    keep = [a.text for a in grounding.attribute(text, strict=True)
            if not (a.cites and by_id[a.cites[0].passage].source in ("title", "outline"))]
    return " ".join(keep)


def join_passages(notes: Sequence[str]) -> str:
    """The writer's own sentences as one paragraph: each ended as a sentence, nothing added."""
    out = []
    for note in notes:
        note = " ".join(note.split())
        if note and note[-1] not in ".!?。！？\"'”’)":
            note += "."
        if note:
            out.append(note)
    return " ".join(out)
