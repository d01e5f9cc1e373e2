"""Token generation on the native model: left-padded batched prefill, KV-cached decoding, sampling.

`Generation` yields one token per active row per step; the caller may `finish(row)` a row early
(a stop string in its text). Rows also finish on a stop id or at max_new_tokens.

A single prompt may continue a given cache that already holds its first positions (a prefix kept
from an earlier call): its PreparedInput then carries only the remaining positions, and its
text_ids are still the whole prompt's (the repetition penalty's history).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from composer.model.base import PENALTY_WINDOW, Sampling, TokenUsage
from composer.model.xcomposer2.internlm2 import KVCache
from composer.model.xcomposer2.model import XComposer2


@dataclass
class PreparedInput:
    """One prompt as the decoder sees it: (T, hidden) embeddings, (T,) image mask, and the prompt's
    text ids (the repetition penalty's history)."""

    embeds: torch.Tensor
    im_mask: torch.Tensor
    text_ids: list[int]

    @property
    def length(self) -> int:
        return self.embeds.shape[0]


def left_pad(inputs: Sequence[PreparedInput]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Stack prompts right-aligned: embeds (B, T, H), attention mask (None if no row is padded),
    im_mask (None if there is no image token at all: the decoder then skips PLoRA entirely)."""
    T = max(p.length for p in inputs)
    first = inputs[0].embeds
    embeds = first.new_zeros(len(inputs), T, first.shape[1])
    attn = torch.zeros(len(inputs), T, dtype=torch.bool, device=first.device)
    im = torch.zeros(len(inputs), T, dtype=torch.bool, device=first.device)
    for row, p in enumerate(inputs):
        embeds[row, T - p.length :] = p.embeds
        attn[row, T - p.length :] = True
        im[row, T - p.length :] = p.im_mask
    padded = any(p.length != T for p in inputs)
    has_images = any(bool(p.im_mask.any()) for p in inputs)
    return embeds, (attn if padded else None), (im if has_images else None)


class Sampler:
    """Repetition penalty, temperature, top-k, top-p, in the order transformers applies them. The
    penalty means what it means in every backend (see Sampling): the last PENALTY_WINDOW tokens."""

    def __init__(self, sampling: Sampling, batch: int, vocab: int, device: torch.device) -> None:
        self.s = sampling
        self.vocab = vocab
        self.device = device
        self.history: list[list[int]] = [[] for _ in range(batch)]
        self.generator: torch.Generator | None = None
        if sampling.seed is not None and not sampling.greedy:
            self.generator = torch.Generator(device=device).manual_seed(sampling.seed)

    def remember(self, row: int, ids: Sequence[int]) -> None:
        self.history[row].extend(ids)

    def recent(self) -> torch.Tensor:
        """(batch, vocab) mask of the tokens the penalty applies to."""
        mask = torch.zeros(len(self.history), self.vocab, dtype=torch.bool)
        for row, ids in enumerate(self.history):
            if ids:
                mask[row, torch.tensor(ids[-PENALTY_WINDOW:], dtype=torch.long)] = True
        return mask.to(self.device)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        s = self.s
        logits = logits.float()
        if s.repetition_penalty != 1.0:
            penalised = torch.where(logits > 0, logits / s.repetition_penalty, logits * s.repetition_penalty)
            logits = torch.where(self.recent(), penalised, logits)
        if s.greedy:
            return logits.argmax(dim=-1)
        logits = logits / s.temperature
        if 0 < s.top_k < logits.shape[-1]:
            kth = torch.topk(logits, s.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if 0 < s.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            probs = sorted_logits.softmax(dim=-1)
            # Drop a token when the tokens before it already reach top_p (the first always stays).
            drop = (probs.cumsum(dim=-1) - probs) >= s.top_p
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
        probs = logits.softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)


class Generation:
    def __init__(
        self,
        model: XComposer2,
        inputs: Sequence[PreparedInput],
        sampling: Sampling,
        stop_ids: Sequence[int],
        usage: TokenUsage,
        cache: KVCache | None = None,
    ) -> None:
        if cache is not None and (len(inputs) != 1 or cache.batch != 1):
            raise ValueError("a given cache continues one prompt only")
        self.model = model
        self.inputs = list(inputs)
        self.cache = cache
        self.fed = 0  # generated tokens run through the model (all but the last, at most)
        self.sampling = sampling
        self.stop_ids = set(stop_ids)
        self.usage = usage
        self.active = [True] * len(self.inputs)
        self.tokens: list[list[int]] = [[] for _ in self.inputs]

    def finish(self, row: int) -> None:
        self.active[row] = False

    @torch.inference_mode()
    def __iter__(self) -> Iterator[list[int | None]]:
        """Per step, the new token of each row (None for rows already finished). A stop id is
        yielded too (so callers see why a row ended) and finishes its row."""
        model, B = self.model, len(self.inputs)
        max_new = self.sampling.max_new_tokens
        embeds, attn, im = left_pad(self.inputs)
        if self.cache is None:
            self.cache = model.new_cache(B, embeds.shape[1] + max_new)
        else:
            self.cache.reserve(embeds.shape[1] + max_new)
        cache = self.cache
        sampler = Sampler(self.sampling, B, model.config.decoder.vocab_size, model.device)
        for row, p in enumerate(self.inputs):
            sampler.remember(row, p.text_ids)
        hidden = model(embeds, cache=cache, attention_mask=attn, im_mask=im)
        self.usage.add(prefill=sum(p.length for p in self.inputs))
        logits = model.logits(hidden[:, -1])
        for step in range(max_new):
            if not any(self.active):
                return
            next_ids = sampler(logits)
            ids = next_ids.tolist()
            out: list[int | None] = []
            produced = 0
            for row, tok in enumerate(ids):
                if not self.active[row]:
                    out.append(None)
                    continue
                produced += 1
                out.append(tok)
                self.tokens[row].append(tok)
                sampler.remember(row, [tok])
                if tok in self.stop_ids or len(self.tokens[row]) >= max_new:
                    self.active[row] = False
            self.usage.decode += produced  # one call per generation, counted at prefill
            yield out
            if not any(self.active) or step == max_new - 1:
                return
            # Finished rows still ride along in the batch (cheaper than reshaping the cache); their
            # tokens are ignored.
            hidden = model(model.model.tok_embeddings(next_ids[:, None]), cache=cache)
            self.fed += 1
            logits = model.logits(hidden[:, -1])
