"""Which paragraphs get a picture: parse the model's answer, or fall back to a rule.

Whatever the model answered, the result holds unique, in-range indices of non-heading
paragraphs, and as many as were asked for when there are enough paragraphs.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from composer.article import Paragraph

WORDS_PER_PICTURE = 175  # "auto": about one picture per 150-200 words of text
_SEG = re.compile(r"<\s*Seg\s*[_-]?\s*(\d+)\s*>", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\d.])(\d{1,3})(?!\d|\.\d)")


@dataclass(frozen=True)
class Placement:
    slots: tuple[int, ...]       # indices into the paragraph list, ascending
    fallback: str | None = None  # why the rule decided (some or all slots), or None


def candidates(paragraphs: Sequence[Paragraph]) -> list[int]:
    return [i for i, p in enumerate(paragraphs) if not p.is_heading and p.text.strip()]


def auto_limit(paragraphs: Sequence[Paragraph], limit: int) -> int:
    """An automatic count never gives every paragraph a picture: at most every other one."""
    return min(limit, max(1, (len(candidates(paragraphs)) + 1) // 2))


def auto_count(paragraphs: Sequence[Paragraph], limit: int) -> int:
    """How many pictures "auto" means: one per WORDS_PER_PICTURE words of text, at least one, at
    most every other paragraph and `limit`."""
    words = sum(len(p.text.split()) for p in paragraphs if not p.is_heading)
    # Chinese has no spaces: count characters as a third of a word each.
    words += sum(len(p.text) // 3 for p in paragraphs if not p.is_heading and len(p.text.split()) <= 2)
    return max(1, min(auto_limit(paragraphs, limit), round(words / WORDS_PER_PICTURE)))


def extract_indices(answer: str, numbering: Literal["seg0", "one"]) -> list[int]:
    """Indices named in an answer. `seg0`: `<Seg i>` tags, 0-based as the xcomposer prompts tag
    paragraphs. `one`: plain numbers, 1-based as the generic prompt numbers them."""
    if numbering == "seg0":
        return [int(m) for m in _SEG.findall(answer)]
    return [int(m) - 1 for m in _NUMBER.findall(answer)]


def place(
    answer: str,
    paragraphs: Sequence[Paragraph],
    count: int | Literal["auto"],
    numbering: Literal["seg0", "one"],
    limit: int,
    index_map: Sequence[int] | None = None,
) -> Placement:
    """`index_map` maps the prompt's numbering to paragraph indices (the generic prompt numbers
    only text paragraphs); `limit` caps an automatic count (e.g. at the images available)."""
    allowed = set(candidates(paragraphs))
    target = min(count, len(allowed)) if count != "auto" else None
    if count != "auto" and count > len(allowed):
        shortfall = f"asked for {count} pictures but the article has {len(allowed)} paragraphs"
    else:
        shortfall = None
    picked: list[int] = []
    for raw in extract_indices(answer or "", numbering):
        idx = raw
        if index_map is not None:
            idx = index_map[raw] if 0 <= raw < len(index_map) else -1
        if idx in allowed and idx not in picked:
            picked.append(idx)
    if target is None:
        # "auto": the count follows the text's length; the model's paragraphs first, the rule
        # fills the rest (a model that names too few is not wrong, only short).
        want = min(auto_count(paragraphs, limit), len(allowed)) if limit > 0 else 0
        picked = picked[:want]
        return Placement(spread(paragraphs, want, keep=picked),
                         "the answer named no usable paragraph" if want and not picked else None)
    picked = picked[:target]
    if len(picked) == target:
        return Placement(tuple(sorted(picked)), shortfall)
    reason = (f"the answer named {len(picked)} of {target} paragraphs" if picked
              else "the answer named no usable paragraph")
    return Placement(spread(paragraphs, target, keep=picked), reason if not shortfall else f"{reason}; {shortfall}")


def spread(paragraphs: Sequence[Paragraph], n: int, keep: Sequence[int] = ()) -> tuple[int, ...]:
    """The rule: split the text paragraphs into n runs and take the longest of each run, so
    pictures land on substantial paragraphs and are spread over the article. `keep` are
    slots already decided; the rule only adds to them."""
    chosen = list(dict.fromkeys(keep))
    pool = [i for i in candidates(paragraphs) if i not in chosen]
    need = min(n - len(chosen), len(pool))
    if need <= 0:
        return tuple(sorted(chosen))
    for k in range(need):
        run = pool[k * len(pool) // need : (k + 1) * len(pool) // need]
        chosen.append(max(run, key=lambda i: (len(paragraphs[i].text), -i)))
    return tuple(sorted(chosen))
