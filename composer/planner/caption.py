"""Captions: ask the model, turn its answer into one complete phrase, or derive one by rule."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from composer.article import Paragraph, paragraph_label
from composer.model.base import ChatModel, Prompt, Sampling
from composer.planner.prompts import Language, Prompts
from composer.planner.segment import first_sentence

MAX_WORDS = 16
SHORT_CAPTION_WORDS = 8  # the limit a caption too long to use whole is asked again with
MAX_CHARS = 120
_LABEL = re.compile(r"^\s*(caption|photo|image|picture|title|标题|图片)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’「」『』`*_"


def parse_caption(answer: str, closing_quote: str | None = None, max_words: int = MAX_WORDS) -> str | None:
    """The caption in an answer, or None when there is nothing usable: no words, or more than
    `max_words` with no clause boundary to end at (never a caption cut with "…"). With
    `closing_quote` (the xcomposer prefix opens a quote), the caption ends at that quote."""
    text = answer or ""
    if closing_quote and closing_quote in text:
        text = text.split(closing_quote, 1)[0]
    lines = [ln for ln in (re.sub(r"<[^>]{0,40}>", "", raw).strip() for raw in text.splitlines()) if ln]
    if not lines:
        return None
    line = _LABEL.sub("", lines[0]).strip().strip(_QUOTES).strip()
    line = re.sub(r"\s+", " ", line)
    first = first_sentence(line).strip(_QUOTES + " ")
    if len(first.split()) >= 3 or (first and not first.isascii()):
        line = first  # a caption is one line of one sentence; models run on
    if not any(ch.isalpha() for ch in line) or len(line) < 3:
        return None
    if "..." in line or "…" in line:  # the model left something out: not a complete phrase
        return None
    return shorten(line, max_words)


_CLAUSE_END = re.compile(r"[,;:]\s|\s?[—–]\s?|[，；：]")  # not inside "3:30" or "1,000"
# Words a caption cut at a word boundary must not end on: the phrase would be left open.
_OPEN_ENDS = {"a", "an", "the", "of", "and", "or", "to", "in", "on", "at", "by", "for", "with", "from",
              "into", "as", "is", "are", "was", "were", "that", "which", "its", "their", "his", "her"}


def _fits(text: str, max_words: int) -> bool:
    return len(text.split()) <= max_words and len(text) <= MAX_CHARS


def shorten(text: str, max_words: int = MAX_WORDS) -> str | None:
    """The caption within `max_words` words and MAX_CHARS characters as one complete phrase: the
    whole text, or the text up to a clause boundary (of at least three words, or any CJK clause).
    None when neither fits: a caption is never cut mid-phrase (no "…")."""
    text = text.strip().rstrip(" ,;:-—–，；：")
    if _fits(text, max_words):
        return text
    boundaries = [m.start() for m in _CLAUSE_END.finditer(text)]
    for end in reversed(boundaries):
        head = text[:end].rstrip(" ,;:-—–")
        if _fits(head, max_words) and (len(head.split()) >= 3 or not head.isascii()):
            return head
    return None


def caption_from_paragraph(paragraph: str, max_words: int = MAX_WORDS) -> str:
    """The rule when the model's caption is unusable: the paragraph's first sentence, or its first
    clause when the sentence is too long, as a complete phrase. Only a first clause longer than a
    caption is cut at a word boundary, ending on a word that closes the phrase."""
    first = (first_sentence(paragraph.strip()) or paragraph).strip(_QUOTES + " ")
    whole = shorten(first, max_words)
    if whole:
        return whole
    clause = _CLAUSE_END.split(first, maxsplit=1)[0].strip(_QUOTES + " ")
    words = clause.split()[:max_words]
    while len(words) > 1 and (words[-1].lower().strip(_QUOTES) in _OPEN_ENDS or len(" ".join(words)) > MAX_CHARS):
        words.pop()
    text = " ".join(words)[:MAX_CHARS].strip()
    return text or "Illustration"


@dataclass(frozen=True)
class Written:
    caption: str
    fallback: str | None = None  # why a rule stood in for the model's caption, if it did


def write_captions(model: ChatModel, prompts: Prompts, paragraphs: Sequence[Paragraph], at: Sequence[int],
                   language: Language, described: Mapping[int, str], sampling: Sampling) -> Iterator[Written]:
    """The caption of each slot, in order (the one caption rule of composing and of adding a
    picture): the model's answer; if it has too many words to end as one phrase, the model asked
    again with a shorter limit; else the slot's photo description, else its paragraph's first
    clause. Chained dialects list the captions before each prompt, so they are asked one at a time."""
    quote = prompts.caption_quote
    captions: list[str] = []

    def ask(slot: int, words: int) -> Prompt:
        past = list(zip(at, captions)) if prompts.chained_captions else []
        return prompts.caption(paragraphs, slot, past, language, described.get(slot, ""), words)

    first = [] if prompts.chained_captions else model.complete([ask(slot, 12) for slot in at], sampling)
    for k, slot in enumerate(at):
        answer = first[k] if first else model.complete([ask(slot, 12)], sampling)[0]
        caption = _usable(parse_caption(answer, quote), ask(slot, 12), paragraphs, described.get(slot, ""))
        if caption is None and _has_words(answer, quote):
            again = ask(slot, SHORT_CAPTION_WORDS)
            caption = _usable(parse_caption(model.complete([again], sampling)[0], quote), again, paragraphs,
                              described.get(slot, ""))
        reason = None
        if caption is None:
            stand_in = shorten(described.get(slot, ""))
            caption = stand_in or caption_from_paragraph(paragraphs[slot].text)
            used = "its photo's description" if stand_in else "its first sentence"
            reason = f"{paragraph_label(paragraphs, slot)}: unusable caption {answer[:60]!r}; used {used}"
        captions.append(caption)
        yield Written(caption, reason)


def _usable(caption: str | None, prompt: Prompt, paragraphs: Sequence[Paragraph], photo: str) -> str | None:
    """None for a caption that only repeats the instructions ("One complete phrase"): a small
    model echoes its prompt. Words from the article or the photo's description are fine."""
    if caption is None:
        return None
    instructions = "\n".join(t.text for t in prompt.turns).casefold()
    for text in (*(p.text for p in paragraphs), photo):
        if text:
            instructions = instructions.replace(text.casefold(), "\n")
    echo = re.compile(r"(?<!\w)" + re.escape(caption.casefold().strip(" .")) + r"(?!\w)")
    return None if echo.search(instructions) else caption


def _has_words(answer: str, quote: str | None) -> bool:
    text = answer.split(quote, 1)[0] if quote else answer
    return len(re.findall(r"\w+", text)) > 1
