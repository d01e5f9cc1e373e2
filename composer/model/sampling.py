"""Token sampling on a logits vector, in numpy, shared by local backends that own their decode loop.

Owning the loop (instead of a runtime's generate) lets a backend reuse its KV cache across
calls, count the positions it really runs, and score options from the same logits it samples.
"""
from __future__ import annotations

import codecs
from collections.abc import Iterable

import numpy as np

from composer.model.base import PENALTY_WINDOW, Sampling


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def apply_repetition_penalty(logits: np.ndarray, recent: Iterable[int], penalty: float) -> np.ndarray:
    """The penalty on the tokens in `recent` (see Sampling: the last PENALTY_WINDOW positions)."""
    if penalty == 1.0:
        return logits
    ids = np.fromiter(set(recent), dtype=np.int64)
    if ids.size == 0:
        return logits
    out = logits.copy()
    vals = out[ids]
    out[ids] = np.where(vals > 0, vals / penalty, vals * penalty)
    return out


def sample_token(logits: np.ndarray, recent: list[int], s: Sampling, rng: np.random.Generator) -> int:
    logits = apply_repetition_penalty(logits, recent[-PENALTY_WINDOW:], s.repetition_penalty)
    if s.greedy:
        return int(np.argmax(logits))
    logits = logits.astype(np.float64) / s.temperature
    k = s.top_k if 0 < s.top_k < logits.size else logits.size
    top = np.argpartition(-logits, k - 1)[:k]
    top = top[np.argsort(-logits[top], kind="stable")]
    probs = np.exp(logits[top] - logits[top[0]])
    probs /= probs.sum()
    if s.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), s.top_p) + 1)
        top, probs = top[:keep], probs[:keep] / probs[:keep].sum()
    return int(top[rng.choice(len(top), p=probs)])


class StopStringFilter:
    """Streams text while holding back just enough to never emit part of a stop string. Every
    backend's stop strings go through this one filter (the native XComposer2 backend feeds it
    the text its detokenizer releases)."""

    def __init__(self, stops: Iterable[str]):
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.stopped = False
        self.started = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self.started:
            # An answer that opens with blank lines has not begun yet; a newline stop must
            # not end it before its first word.
            text = text.lstrip()
            if not text:
                return ""
            self.started = True
        self.pending += text
        hits = [h for h in (self.pending.find(s) for s in self.stops) if h >= 0]
        if hits:
            out, self.pending, self.stopped = self.pending[: min(hits)], "", True
            return out
        # Hold back only a tail that may still become a stop string.
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.pending.endswith(s[:k])), default=0)
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def utf8_decoder():
    """Tokens can split a UTF-8 character (Chinese, emoji); decode bytes incrementally."""
    return codecs.getincrementaldecoder("utf-8")(errors="replace")
