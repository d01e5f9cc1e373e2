"""Which sentences of an article say things its materials do not: a check with no model.

A sentence is cut into checkable claims — numbers (digits, English number words, Chinese
numerals), percentages, dates, names and quoted text — and each claim is looked up in the
writer's sources (title, outline, materials) after both sides are normalised the same way:
NFKC (full-width forms), case, thousands separators, number words to values. A claim that is
not found is flagged with its sentence, its span inside the sentence and a reason. Prose that
only paraphrases the materials has no claims and is never flagged: this finds invented facts,
not invented opinions.

Choices, so that a flag is worth reading:
- A spelled-out number below ten ("two cups", 三个) is prose, not a claim; digits always are.
- Names are runs of capitalised Latin words; a single capitalised word at the start of a
  sentence is not one, nor is a word the text also uses in lower case. Headings are often in
  title case, so their names are not checked (their numbers are). Chinese names are only
  checked when quoted (“切尔西”), since Chinese has no capitals to find them by.
- An article with no materials is all claims: the result says so once instead of flagging.

Imports nothing of composer's but the article model, so the planner, the CLI and the editor
can all call it.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple

from composer.article import Article, Figure, Paragraph, paragraph_label

ClaimKind = Literal["number", "year", "percent", "date", "time", "name", "quote"]
# A flag is a claim not found, or a whole sentence the attribution finds no support for (or meta text).
FlagKind = Literal["number", "year", "percent", "date", "time", "name", "quote", "sentence", "meta"]
NO_MATERIALS_NOTE = "no materials were given, so nothing in the article could be checked against them"

# --- text normalisation ------------------------------------------------------------------


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


class _Mapped:
    """NFKC-normalised text that remembers, for each of its characters, the index of the
    original character it came from, so that a match in the normal form gives a span of the
    original text (NFKC changes lengths: "ﬁ" → "fi", "①" → "1")."""

    def __init__(self, text: str):
        self.original = text
        if text.isascii() or unicodedata.is_normalized("NFKC", text):
            self.text, self.origin = text, None
            return
        out: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            norm = _nfkc(ch) if ord(ch) > 127 else ch
            out.append(norm)
            origin.extend([i] * len(norm))
        self.text, self.origin = "".join(out), origin

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.origin is None:
            return start, end
        return self.origin[start], self.origin[end - 1] + 1


# --- numbers -----------------------------------------------------------------------------

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_ZH_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_BIG = {"万": 10**4, "亿": 10**8}
_ZH_NUMERAL = "".join([*_ZH_DIGITS, *_ZH_UNITS, *_ZH_BIG])

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One token: a number in digits (thousands separators, decimals, a Chinese 万/亿 after it),
# a run of Chinese numerals, a CJK character, a word (hyphens and apostrophes inside), or a
# sign that matters to a claim.
_TOKEN = re.compile(
    rf"(?P<time>\d{{1,2}}:\d{{2}})(?![\d:])"
    rf"|(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?(?!\d|,\d)|\d+(?:\.\d+)?)(?P<numscale>[万亿])?"
    rf"|(?P<zh>[{_ZH_NUMERAL}]+)"
    rf"|(?P<cjk>[{_CJK}])"
    rf"|(?P<word>[^\W\d_]+(?:['’\-][^\W\d_]+)*)"
    rf"|(?P<sign>%)"
)


class _Token(NamedTuple):  # a tuple: tokenising 100 kB of materials makes tens of thousands
    kind: str  # time | num | zh | cjk | word | sign
    text: str
    start: int
    end: int
    value: Decimal = Decimal(0)  # a num or zh token's value; unused for the other kinds


def _tokens(text: str) -> list[_Token]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        if kind == "numscale" or kind == "num":
            value = _decimal(m.group("num").replace(",", ""))
            if m.group("numscale"):
                value = value * _ZH_BIG[m.group("numscale")]
            out.append(_Token("num", m.group(), m.start(), m.end(), value))
        elif kind == "zh":
            out.append(_Token("zh", m.group(), m.start(), m.end(), _zh_value(m.group())))
        elif kind == "time":  # 6:45 is one claim, not 6 and 45; 07:00 and 7:00 are the same
            out.append(_Token("time", str(int(m.group()[:-3])) + m.group()[-3:], m.start(), m.end()))
        else:
            out.append(_Token(kind, m.group(), m.start(), m.end()))
    return out


def _decimal(digits: str) -> Decimal:
    try:
        return Decimal(digits)
    except InvalidOperation:  # digits of another script that Decimal does not read
        return Decimal(int(unicodedata.digit(digits[0], 0)))


def _zh_value(run: str) -> Decimal:
    if all(ch in _ZH_DIGITS for ch in run):  # 二〇一五: digits read one by one
        return Decimal("".join(str(_ZH_DIGITS[ch]) for ch in run))
    total = section = number = 0
    for ch in run:
        if ch in _ZH_DIGITS:
            number = _ZH_DIGITS[ch]
        elif ch in _ZH_UNITS:
            section += (number or 1) * _ZH_UNITS[ch]
            number = 0
        elif ch == "万":
            total += (section + number) * 10**4
            section = number = 0
        else:  # 亿
            total = (total + section + number) * 10**8
            section = number = 0
    return Decimal(total + section + number)


@dataclass(frozen=True)
class _Number:
    start: int  # offsets in the text the tokens came from
    end: int
    value: Decimal
    spelled_small: bool  # a word number below ten, alone: prose, not a claim
    tokens: tuple[int, int]  # token index range [a, b)


def _numbers(text: str, tokens: Sequence[_Token]) -> list[_Number]:
    """Runs of number tokens read as one value each: "five hundred and fifty", "13.2 billion",
    "twenty-five", 一千二百, 5万."""
    found: list[_Number] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t.kind == "zh":
            found.append(_zh_number(t, i))
            i += 1
            continue
        if t.kind != "num" and (t.kind != "word" or not _may_be_number(t.text)):
            i += 1
            continue
        start_i = i
        total = current = Decimal(0)
        last = None  # the kind of the previous piece: digits | unit | tens | scale
        has_value = False
        j = i
        while j < n:
            tok = tokens[j]
            if j > start_i and not _adjacent(text, tokens[j - 1], tok):
                break
            word = tok.text.lower() if tok.kind == "word" else ""
            if tok.kind == "num":
                if last is not None:
                    break
                current, last, has_value = tok.value, "digits", True
            elif word in _SCALES:
                if last is None or last == "scale" and _SCALES[word] <= 100:
                    break
                scale = _SCALES[word]
                if scale == 100:
                    current = (current or Decimal(1)) * 100
                else:
                    total += (current or Decimal(1)) * scale
                    current = Decimal(0)
                last, has_value = "scale", True
            elif word in ("a", "an") and j == start_i and j + 1 < n and tokens[j + 1].text.lower() in _SCALES:
                current, last = Decimal(1), "a"
            elif word == "and" and last == "scale" and j + 1 < n and _word_value(tokens[j + 1]) is not None:
                pass
            elif (parts := _word_parts(word)) is not None:
                piece = sum(parts)
                small = piece < 100
                after_tens_unit = last == "tens" and piece < 10 and current % 10 == 0  # "twenty five"
                if last == "digits" or (last in ("unit", "tens") and not after_tens_unit):
                    break
                if last == "scale" and current % 100 != 0 and small:
                    break
                current += piece
                last, has_value = ("tens" if piece % 10 == 0 and piece >= 20 else "unit"), True
            else:
                break
            j += 1
        if not has_value:
            i = max(j, i + 1)
            continue
        while tokens[j - 1].text.lower() in ("and", "a", "an"):
            j -= 1
        value = total + current
        run = tokens[start_i:j]
        spelled_small = all(tok.kind == "word" for tok in run) and len(run) == 1 and value < 10
        found.append(_Number(run[0].start, run[-1].end, value, spelled_small, (start_i, j)))
        i = j
    return found


def _zh_number(t: _Token, i: int) -> _Number:
    # 一些, 三四个 (three or four), 千万 (by all means), 十 (also "very" in 十分): not claims.
    vague = len(t.text) < 2 or all(ch in _ZH_UNITS or ch in _ZH_BIG for ch in t.text) or (
        all(ch in _ZH_DIGITS for ch in t.text) and len(t.text) < 4)
    return _Number(t.start, t.end, t.value, vague or t.value < 10, (i, i + 1))


_NUMBER_WORDS = frozenset([*_UNITS, *_TENS, *_SCALES, "a", "an"])


def _may_be_number(word: str) -> bool:
    word = word.lower()
    return word in _NUMBER_WORDS or ("-" in word and _word_parts(word) is not None)


def _word_parts(word: str) -> list[int] | None:
    """"twenty-five" → [20, 5]; "fifty" → [50]; anything else → None."""
    if word in _UNITS:
        return [_UNITS[word]]
    if word in _TENS:
        return [_TENS[word]]
    tens, _, unit = word.partition("-")
    if tens in _TENS and unit in _UNITS and 0 < _UNITS[unit] < 10:
        return [_TENS[tens], _UNITS[unit]]
    return None


def _word_value(tok: _Token) -> int | None:
    if tok.kind == "num":
        return 0
    parts = _word_parts(tok.text.lower()) if tok.kind == "word" else None
    return None if parts is None else sum(parts)


def _adjacent(text: str, a: _Token, b: _Token) -> bool:
    gap = text[a.end:b.start]
    return len(gap) <= 2 and (gap.strip() == "" or gap == "-")


# --- dates -------------------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate(
    "january february march april may june july august september october november december".split())}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MONTH = (
    r"(?P<month>January|February|March|April|May|June|July|August|September|October|November|December"
    r"|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
)
_ORD = r"(?:st|nd|rd|th)?"
# Each form starts with a digit or a month name (a regex that can start anywhere, as the
# Chinese form's optional year would, is ten times slower over 100 kB of materials).
_DATE = re.compile(
    rf"(?<![\w.,])(?P<d1>\d{{1,2}}){_ORD}\s+(?:of\s+)?{_MONTH.replace('month', 'm1')}(?:,?\s+(?P<y1>\d{{4}}))?\b"
    rf"|\b{_MONTH.replace('month', 'm2')}\s+(?P<d2>\d{{1,2}}){_ORD}(?:,?\s+(?P<y2>\d{{4}}))?\b(?!:)"
    rf"|\b{_MONTH.replace('month', 'm3')}\s+(?P<y3>\d{{4}})\b"
    r"|(?<![\w.,])(?P<y4>\d{4})-(?P<m4>\d{1,2})-(?P<d4>\d{1,2})\b"
)
_ZH_PART = rf"\d{{1,2}}|[{_ZH_NUMERAL}]{{1,3}}"
# Found from each 月: the month and the year before it, the day after it.
_ZH_DATE_BEFORE = re.compile(rf"(?:(?P<y5>\d{{4}}|[{_ZH_NUMERAL}]{{4}})\s*年\s*)?(?P<m5>{_ZH_PART})\s*$")
_ZH_DATE_AFTER = re.compile(rf"\s*(?P<d5>{_ZH_PART})\s*[日号]")

Date = tuple[int | None, int, int | None]  # (year, month, day)


def _dates(text: str) -> list[tuple[int, int, Date]]:
    out: list[tuple[int, int, Date]] = []
    for m in _DATE.finditer(text):
        g = m.groupdict()
        for k in "1234":
            month_text = g.get(f"m{k}")
            if month_text is None:
                continue
            month = _MONTHS.get(month_text.rstrip(".").lower()) if k != "4" else _int(month_text)
            _add_date(out, m.start(), m.end(), _int(g.get(f"y{k}")), month, _int(g.get(f"d{k}")))
            break
    at = text.find("月")
    while at >= 0:
        before = _ZH_DATE_BEFORE.search(text, max(0, at - 12), at)
        after = _ZH_DATE_AFTER.match(text, at + 1)
        if before is not None and (before.group("y5") or after is not None):  # 三月 alone: a month, not a date
            end = after.end() if after is not None else at + 1
            _add_date(out, before.start(), end, _int(before.group("y5")), _int(before.group("m5")),
                      _int(after.group("d5")) if after is not None else None)
        at = text.find("月", at + 1)
    out.sort()
    return out


def _add_date(out: list, start: int, end: int, year: int | None, month: int | None, day: int | None) -> None:
    if month and 1 <= month <= 12 and (day is None or 1 <= day <= 31):
        out.append((start, end, (year, month, day)))


def _int(text: str | None) -> int | None:
    if not text:
        return None
    if text[0] in _ZH_NUMERAL:
        return int(_zh_value(text))
    return int(_decimal(text))


def _date_supported(claim: Date, known: Iterable[Date]) -> bool:
    y, m, d = claim
    return any(m == km and (d is None or d == kd) and (y is None or y == ky) for ky, km, kd in known)


# --- names and quotes --------------------------------------------------------------------

_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_CAP_WORD = re.compile(rf"[{_LATIN}]+(?:['’\-.][{_LATIN}]+)*\.?")
_NAME_JOINERS = {
    "of", "de", "da", "di", "van", "von", "der", "den", "del", "la", "le", "du", "bin", "al", "y", "and", "&",
}
# Capitalised at a sentence's start for grammar's sake; never a name on their own.
_FUNCTION_WORDS = set(
    "a an the this that these those there here it its i i'm i've i'd we you he she they my our your his her their "
    "in on at by for from with without into onto over under after before during since until while when where why how "
    "what which who whose whom if then than so but and or nor yet also as of to up down out about above below "
    "every each all some many most more much few no not never always often sometimes today tonight tomorrow yesterday "
    "now just only even still once one first last next meanwhile however therefore although though because "
    "mr mrs ms dr st prof sir madam".split()
)
_HONORIFICS = {"mr", "mrs", "ms", "dr", "prof", "professor", "sir", "dame", "captain", "commander", "president",
               "saint", "st", "king", "queen", "lady", "lord", "general", "colonel", "doctor"}
_NOT_NAMES = set(_MONTHS) | set("monday tuesday wednesday thursday friday saturday sunday i ok".split())
_QUOTE = re.compile(
    r"“([^”\n]{1,400})”|\"([^\"\n]{1,400})\""
    r"|「([^」\n]{1,400})」|『([^』\n]{1,400})』|《([^》\n]{1,400})》"
)


def _is_capitalised(word: str) -> bool:
    return word[0].isupper()


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    kind: ClaimKind
    key: Any  # what is looked up in the sources


# --- sources -----------------------------------------------------------------------------


def _match_text(text: str, tokens: Sequence[_Token] | None = None,
                numbers: Sequence[_Number] | None = None) -> str:
    """The form names and quotes are looked up in: NFKC, case-folded, words and CJK characters
    separated by single spaces, numbers replaced by their value (so "fifty" matches "50").
    `tokens`/`numbers`: those of the NFKC text, when the caller has them already."""
    if tokens is None:
        text = _nfkc(text)
        tokens = _tokens(text)
    by_start = {num.tokens[0]: num for num in (_numbers(text, tokens) if numbers is None else numbers)}
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if i in by_start:
            out.append(f"#{by_start[i].value.normalize():f}")
            i = by_start[i].tokens[1]
            continue
        t = tokens[i]
        if t.kind in ("word", "cjk", "time"):
            out.append(t.text.casefold().replace("’", "'"))
        i += 1
    return " ".join(out)


def request_texts(request: dict[str, Any] | None) -> tuple[str, list[str], str]:
    """The title, outline and materials of a request stored with an article (as the writer's
    JSON may hold them: an outline as lines of text, materials as a list)."""
    request = request or {}
    outline = request.get("outline") or ()
    if isinstance(outline, str):
        outline = outline.splitlines()
    materials = request.get("materials") or ""
    if isinstance(materials, list):
        materials = "\n".join(map(str, materials))
    return str(request.get("title") or ""), [str(o) for o in outline], str(materials)


@dataclass(frozen=True)
class Sources:
    """Everything a claim may be found in, normalised once (a check of a long article against
    100 kB of materials looks things up thousands of times)."""

    text: str  # the raw sources, joined
    haystack: str  # _match_text of the sources, padded with spaces for whole-word lookups
    numbers: frozenset[Decimal]
    percents: frozenset[Decimal]
    dates: tuple[Date, ...]
    times: frozenset[str]
    has_materials: bool
    lowercase_words: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, title: str = "", outline: Sequence[str] = (), materials: str = "") -> Sources:
        text = "\n".join([title, *outline, materials])
        norm = _nfkc(text)
        tokens = _tokens(norm)
        numbers = _numbers(norm, tokens)
        percents = {span.key for span in _percents(norm, tokens, numbers)}
        # A percentage's number and a date's day and year are numbers of the sources too.
        return cls(
            text=text,
            haystack=f" {_match_text(norm, tokens, numbers)} ",
            numbers=frozenset(n.value for n in numbers),
            percents=frozenset(percents),
            dates=tuple(d for _, _, d in _dates(norm)),
            times=frozenset(t.text for t in tokens if t.kind == "time"),
            has_materials=bool(materials.strip()),
            lowercase_words=frozenset(t.text for t in tokens if t.kind == "word" and t.text.islower()),
        )

    @classmethod
    def of_request(cls, request: dict[str, Any] | None) -> Sources:
        return cls.of(*request_texts(request))

    def contains_text(self, text: str) -> bool:
        needle = _match_text(text)
        return bool(needle) and f" {needle} " in self.haystack


def _percents(text: str, tokens: Sequence[_Token], numbers: Sequence[_Number]) -> list[_Span]:
    out = []
    by_end = {num.tokens[1]: num for num in numbers}
    for j, t in enumerate(tokens):
        num = by_end.get(j)
        if num is None:
            continue
        word = t.text.lower()
        end = None
        if t.kind == "sign" and _adjacent(text, tokens[j - 1], t):
            end = t.end
        elif word == "percent" and _adjacent(text, tokens[j - 1], t):
            end = t.end
        elif word == "per" and j + 1 < len(tokens) and tokens[j + 1].text.lower() == "cent":
            end = tokens[j + 1].end
        if end is not None:
            out.append(_Span(num.start, end, "percent", num.value))
    for m in re.finditer(rf"百分之([{_ZH_NUMERAL}]+|\d+(?:\.\d+)?)", text):
        digits = m.group(1)
        value = _zh_value(digits) if digits[0] in _ZH_NUMERAL else _decimal(digits)
        out.append(_Span(m.start(), m.end(), "percent", value))
    return out


# --- claims in a sentence ----------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A checkable thing a sentence says; `start`/`end` are offsets inside the sentence."""

    text: str
    start: int
    end: int
    kind: ClaimKind


def claims_in(
    sentence: str, *, names: bool = True, lowercase_words: frozenset[str] = frozenset()
) -> list[tuple[Claim, Any]]:
    """The claims of one sentence, each with the key it is looked up by. Spans never overlap
    within a kind, and a number that is part of a date or a percentage is not claimed again."""
    mapped = _Mapped(sentence)
    text = mapped.text
    tokens = _tokens(text)
    numbers = _numbers(text, tokens)
    spans: list[_Span] = []
    for start, end, date in _dates(text):
        spans.append(_Span(start, end, "date", date))
    spans.extend(_percents(text, tokens, numbers))
    taken = [(s.start, s.end) for s in spans]
    for num in numbers:
        if num.spelled_small or any(a <= num.start and num.end <= b for a, b in taken):
            continue
        year = re.fullmatch(r"1\d{3}|20\d{2}", text[num.start:num.end]) is not None
        spans.append(_Span(num.start, num.end, "year" if year else "number", num.value))
    spans.extend(_Span(t.start, t.end, "time", t.text) for t in tokens if t.kind == "time")
    for m in _QUOTE.finditer(text):
        inner = next(g for g in m.groups() if g is not None)
        if _match_text(inner):  # a quote of punctuation only says nothing checkable
            spans.append(_Span(m.start(), m.end(), "quote", inner))
    if names:
        here = {t.text for t in tokens if t.kind == "word" and t.text.islower()}
        spans.extend(_names(text, lambda w: w in here or w in lowercase_words))
    out = []
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        start, end = mapped.span(s.start, s.end)
        out.append((Claim(sentence[start:end], start, end, s.kind), s.key))
    return out


def _names(text: str, is_common: Callable[[str], bool]) -> list[_Span]:
    """`is_common(word)`: the text or the sources use the word in lower case."""
    words = [m for m in _CAP_WORD.finditer(text)]
    spans: list[_Span] = []
    i = 0
    while i < len(words):
        if not _is_capitalised(words[i].group(0)):
            i += 1
            continue
        run = [words[i]]
        j = i + 1
        while j < len(words) and _adjacent_words(text, words[j - 1], words[j]):
            w = words[j].group(0)
            if _is_capitalised(w):
                run.append(words[j])
            elif w.lower() in _NAME_JOINERS and j + 1 < len(words) and _is_capitalised(words[j + 1].group(0)) \
                    and _adjacent_words(text, words[j], words[j + 1]):
                run.append(words[j])
            else:
                break
            j += 1
        i = j
        initial = _sentence_initial(text, run[0].start())
        # The first word of a sentence is capitalised for grammar: drop it when it is a common word.
        while run and (run[0].group(0).lower().rstrip(".") in _FUNCTION_WORDS
                       or (initial and is_common(run[0].group(0).lower()))):
            run = run[1:]
            initial = False
        while run and run[-1].group(0).lower() in _NAME_JOINERS:
            run = run[:-1]
        if not run:
            continue
        if len(run) == 1:
            word = run[0].group(0)
            if initial or is_common(word.lower()) or word.lower().rstrip(".") in _NOT_NAMES or len(word) < 2:
                continue
        start, end = run[0].start(), run[-1].end()
        name = text[start:end]
        for suffix in ("'s", "’s", "'", "’", "."):
            if name.endswith(suffix) and len(name) > len(suffix) + 1:
                name, end = name[: -len(suffix)], end - len(suffix)
                break
        spans.append(_Span(start, end, "name", name))
    return spans


def _adjacent_words(text: str, a: re.Match, b: re.Match) -> bool:
    return text[a.end():b.start()] in (" ", "\u00a0")


def _sentence_initial(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \"'“‘([«—-")
    return not before or before.endswith((":", ";", ".", "!", "?", "。", "！", "？"))


def _supported(kind: ClaimKind, key: Any, text: str, sources: Sources) -> bool:
    if kind in ("number", "year"):
        return key in sources.numbers
    if kind == "percent":
        return key in sources.percents
    if kind == "time":
        return key in sources.times
    if kind == "date":
        return _date_supported(key, sources.dates)
    if kind == "name":
        if sources.contains_text(key):
            return True
        joiners = "|".join(map(re.escape, _NAME_JOINERS))
        parts = [p.strip() for p in re.split(rf"\s(?:{joiners})\s", key)]
        if len(parts) > 1:  # "Eileen Collins of NASA": each name on its own is enough
            return all(_supported("name", p, p, sources) for p in parts if p)
        words = key.split()
        while len(words) > 1 and words[0].lower().rstrip(".") in _HONORIFICS:
            words = words[1:]
            if sources.contains_text(" ".join(words)):
                return True
        return False
    return sources.contains_text(key)  # quote


# --- sentences ---------------------------------------------------------------------------

_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "etc", "e.g", "i.e", "approx",
                  "a.m", "p.m", "u.s", "u.k", "fig", "inc", "ltd", "mt", "ft", "jan", "feb", "mar", "apr",
                  "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]»]*(?=\s)|[。！？]+[”’」』)\]]*|\n+")


def sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of a text: ends at . ! ? before a space (not after a common
    abbreviation or an initial), at 。！？ and at line breaks; each span trimmed of spaces."""
    spans = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.group(0).startswith(".") and len(m.group(0).rstrip("\"'”’)]»")) == 1:
            tail = text[max(start, m.start() - 24):m.start()].split()
            prev = tail[-1].lstrip("\"'“‘(") if tail else ""
            if prev.lower() in _ABBREVIATIONS or (len(prev) == 1 and prev.isupper()):  # an initial: J. K.
                continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip())
        trail = len(seg.rstrip())
        if trail > lead:
            out.append((a + lead, a + trail))
    return out


# --- the check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """A claim the sources do not contain. `start`/`end` index `sentence`; `sentence_start` is
    where the sentence starts in its block's text (the caption, for a figure)."""

    block: int
    where: Literal["paragraph", "heading", "caption"]
    sentence: str
    sentence_start: int
    start: int
    end: int
    claim: str
    kind: FlagKind
    reason: str
    index: int = 0  # the sentence's number in its block, from 1 (0: not known, an older article.json)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Flag:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class CheckResult:
    flags: tuple[Flag, ...] = ()
    claims: int = 0  # claims looked up, supported or not
    words: int = 0  # words of text checked (for "per 100 words")
    note: str | None = None  # said once instead of flags (no materials)
    labels: dict[int, str] = field(default_factory=dict)  # block → "paragraph 3", for messages

    def flags_for(self, block: int) -> list[Flag]:
        return [f for f in self.flags if f.block == block]

    def to_dict(self) -> dict[str, Any]:
        return {"flags": [f.to_dict() for f in self.flags], "claims": self.claims, "words": self.words,
                "note": self.note, "labels": {str(k): v for k, v in self.labels.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        return cls(tuple(Flag.from_dict(f) for f in d.get("flags", [])), int(d.get("claims", 0)),
                   int(d.get("words", 0)), d.get("note"), {int(k): v for k, v in (d.get("labels") or {}).items()})


_ENUMERATOR = re.compile(r"\s*\(?\d{1,2}[.)]\s")


def check_text(text: str, sources: Sources, *, block: int = 0,
               where: Literal["paragraph", "heading", "caption"] = "paragraph",
               lowercase_words: frozenset[str] = frozenset()) -> tuple[list[Flag], int]:
    """Flags for one block's text, and how many claims it made. `lowercase_words`: words the
    article or the sources use in lower case (common words, not names); default: the sources'."""
    lowercase_words = lowercase_words or sources.lowercase_words
    flags: list[Flag] = []
    count = 0
    enumerator = _ENUMERATOR.match(text)  # "1) " / "2. " numbers a list item: not a claim
    for index, (a, b) in enumerate(sentences(text), start=1):
        sentence = text[a:b]
        for claim, key in claims_in(sentence, names=where != "heading", lowercase_words=lowercase_words):
            if enumerator and a + claim.start < enumerator.end() and claim.kind == "number":
                continue
            count += 1
            if not _supported(claim.kind, key, claim.text, sources):
                flags.append(Flag(block, where, sentence, a, claim.start, claim.end, claim.text, claim.kind,
                                  f"{_shown(claim.text)} is not in the materials", index))
    return flags, count


def _shown(claim: str) -> str:
    claim = " ".join(claim.split())
    return claim if len(claim) <= 80 else claim[:77] + "…"


def check_claims(article: Article, sources: Sources | None = None) -> CheckResult:
    """The claims alone (composer.check.check_article adds the sentences' attribution): check
    every paragraph, heading and caption against the request stored with the article
    (`metadata["request"]`: title, outline, materials), or against `sources` when given."""
    if sources is None:
        sources = Sources.of_request(article.metadata.get("request"))
    labels = block_labels(article)
    words = sum(len(text.split()) for _, text, _ in texts_of(article))
    if not sources.has_materials:
        return CheckResult((), 0, words, NO_MATERIALS_NOTE, labels)
    flags: list[Flag] = []
    claims = 0
    lower = sources.lowercase_words.union(
        w for _, text, _ in texts_of(article) for w in _CAP_WORD.findall(text) if w.islower())
    for i, text, where in texts_of(article):
        found, n = check_text(text, sources, block=i, where=where, lowercase_words=lower)
        flags.extend(found)
        claims += n
    return CheckResult(tuple(flags), claims, words, None, labels)


def texts_of(article: Article) -> Iterator[tuple[int, str, Literal["paragraph", "heading", "caption"]]]:
    for i, block in enumerate(article.blocks):
        if isinstance(block, Paragraph):
            yield i, block.text, "heading" if block.is_heading else "paragraph"
        elif isinstance(block, Figure) and block.caption.strip():
            yield i, block.caption, "caption"


def block_labels(article: Article) -> dict[int, str]:
    """How a writer finds a block, numbered as the editor shows it (article.paragraph_label):
    body paragraphs from 1, headings by their words, a caption by the paragraph it follows."""
    return {i: paragraph_label(article.blocks, i) if isinstance(block, Paragraph)
            else f"caption {paragraph_label(article.blocks, i)}" for i, block in enumerate(article.blocks)}


def summary_line(result: CheckResult, limit: int = 5, command: str = "python -m composer check") -> str:
    """One line for a terminal after compose: "3 claims not in your materials: 4,321 (paragraph
    2), …"."""
    if result.note:
        return result.note[0].upper() + result.note[1:] + "."
    if not result.flags:
        if not result.claims:
            return "The article makes no checkable claims (numbers, dates, names, quotes)."
        return f"Every checked claim is in your materials ({result.claims} checked)."
    items = [f"{_shown(f.claim)} ({result.labels.get(f.block, f'block {f.block + 1}')})" for f in result.flags[:limit]]
    more = len(result.flags) - limit
    n = len(result.flags)
    line = f"{n} claim{'s' if n != 1 else ''} not in your materials: " + "; ".join(items)
    return line + (f"; and {more} more ({command})" if more > 0 else "")


def flag_lines(result: CheckResult) -> list[str]:
    """One line per flag (`paragraph 2: "…sentence…" — 4,321 is not in the materials`), or the
    note said once; what `python -m composer check` prints and the /check API returns."""
    if result.note:
        return [result.note]
    return [f"{result.labels.get(f.block, f'block {f.block + 1}')}{f', sentence {f.index}' if f.index else ''}: "
            f"\"{f.sentence}\" — {f.reason}" for f in result.flags]


def marked_sentences(flags: Sequence[Flag]) -> list[list[tuple[str, bool]]]:
    """Each flagged sentence of one block as pieces of text, True where a claim is flagged, for
    an editor to highlight (pieces joined give the sentence back, character for character)."""
    by_sentence: dict[tuple[int, str], list[Flag]] = {}
    for f in flags:
        by_sentence.setdefault((f.sentence_start, f.sentence), []).append(f)
    out = []
    for (_, sentence), group in sorted(by_sentence.items()):
        pieces: list[tuple[str, bool]] = []
        at = 0
        for f in sorted(group, key=lambda f: (f.start, -f.end)):
            if f.start < at:  # overlaps a claim already marked
                continue
            if f.start > at:
                pieces.append((sentence[at:f.start], False))
            pieces.append((sentence[f.start:f.end], True))
            at = f.end
        if at < len(sentence):
            pieces.append((sentence[at:], False))
        out.append(pieces)
    return out


def flags_of(article: Article) -> dict[int, list[Flag]]:
    """The stored check (metadata["claims"], written by annotate) by block index."""
    result = CheckResult.from_dict(article.metadata.get("claims") or {})
    by_block: dict[int, list[Flag]] = {}
    for f in result.flags:
        by_block.setdefault(f.block, []).append(f)
    return by_block
