"""The words of a sentence that carry its meaning, normalised so that one fact written two ways
meets itself: NFKC, case, possessives, plurals and verb endings (Snowball's English stemmer:
"ladybirds" and "ladybird's" are "ladybird", "overwintering" is "overwint"). Chinese, which has
no spaces and no stemmer, is matched by character pairs (bigrams).

Quantity and negation words ("all", "never", "millions", "not") are kept as terms though most
stop lists drop them: "some species" → "all species" is exactly the change a check must see.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]+|[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,]\d+)*", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")

# Words that say nothing checkable on their own (articles, pronouns, auxiliaries, prepositions,
# connectives). Not here: quantity and negation words, which are QUANTIFIERS / NEGATIONS below.
STOPWORDS = frozenset("""
a about above across after again against also although am among an and another any are around as at be because
been before being below beside besides between both but by can could did do does doing down during each either
else even ever for from further had has have having he her here hers herself him himself his how however i if in
into is it its itself just let lets like may me might more much must my myself near nor of off on once one onto
or other others our ours ourselves out over own per quite rather same she should since so such than that the their
theirs them themselves then there these they this those though through thus to too toward towards under until up
upon us very via was we were what when where whether which while who whom whose why will with within would yet you
your yours yourself yourselves s t d ll re ve get gets got make makes made
""".split())
QUANTIFIERS = frozenset("""
all every everyone everything always never none no nobody nothing most many few several some often rarely seldom
usually sometimes only entire whole each both millions billions thousands hundreds dozens countless numerous
""".split())
NEGATIONS = frozenset("not no never none nor cannot without n't nothing nobody neither".split())


@dataclass(frozen=True)
class Term:
    """A word of a text: its stem (what is compared) and where it stands (for marking it)."""

    stem: str
    start: int
    end: int
    word: str


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


# Units written short in one text and long in another are one unit.
UNITS = {"g": "gram", "kg": "kilogram", "mg": "milligram", "cm": "centimetre", "mm": "millimetre", "km": "kilometre",
         "m": "metre", "ml": "millilitre", "l": "litre", "min": "minute", "mins": "minute", "h": "hour", "hr": "hour",
         "hrs": "hour", "s": "second", "sec": "second", "secs": "second", "percent": "per cent", "°c": "celsius",
         "c": "celsius", "centimeter": "centimetre", "meter": "metre", "kilometer": "kilometre", "liter": "litre"}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = UNITS.get(word.rstrip("'"), word.rstrip("'"))
    return _stemmer().stemWord(word)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def terms(text: str, keep_stopwords: bool = False) -> list[Term]:
    """The content words of `text` in order (offsets index `text`; NFKC keeps lengths for the
    letters that matter here), Chinese runs as overlapping character pairs."""
    out: list[Term] = []
    for m in _WORD.finditer(text):
        word = m.group(0)
        if _IS_CJK.match(word):
            chars = normalise(word)
            if len(chars) == 1:
                out.append(Term(chars, m.start(), m.end(), word))
            for i in range(len(chars) - 1):
                out.append(Term(chars[i:i + 2], m.start() + i, m.start() + i + 2, word[i:i + 2]))
            continue
        low = normalise(word).lower().replace("’", "'")
        if low.endswith("n't"):
            out.append(Term("n't", m.end() - 3, m.end(), "n't"))
            low = {"wo": "will", "ca": "can", "sha": "shall"}.get(low[:-3], low[:-3])
            if not low:
                continue
        if not keep_stopwords and low in STOPWORDS and low not in QUANTIFIERS and low not in NEGATIONS:
            continue
        out.append(Term(stem(low), m.start(), m.start() + len(low), word))
    return out


def is_chinese(text: str) -> bool:
    cjk = len(_IS_CJK.findall(text))
    return cjk > 0 and cjk >= len(re.findall(r"[^\W\d_]", text)) / 2
