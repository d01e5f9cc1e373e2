"""The ChatModel backend `xcomposer2[:HUB_ID_OR_PATH]` on the native implementation.

- stream / complete: stop on </s> (2) and [UNUSED_TOKEN_145] (92542, end of turn) and on
  Sampling.stop strings; complete runs its prompts as one left-padded batch.
- choose: the log-likelihood of each option as the answer. The prompt (images included) is run
  once; its KV cache is copied for the options, which then run together as one batch.
- usage counts positions actually run through the model (prefill) and tokens generated (decode).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import torch

from composer.model.base import ModelError, Prompt, Sampling, TokenUsage
from composer.model.xcomposer2.checkpoint import default_device_dtype, load_pretrained, resolve
from composer.model.xcomposer2.generation import Generation, PreparedInput
from composer.model.xcomposer2.model import XComposer2
from composer.model.xcomposer2.prompting import TokenizedPrompt, tokenize
from composer.model.xcomposer2.tokenizer import XComposer2Tokenizer

DEFAULT_ID = "internlm/internlm-xcomposer2-7b"


class TextStream:
    """Detokenizes a growing id list into text deltas, holding back what may still turn out to be
    the start of a stop string or an incomplete UTF-8 character."""

    def __init__(self, tokenizer: XComposer2Tokenizer, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.ids: list[int] = []
        self.emitted = 0
        self.text = ""  # everything released so far
        self.stopped = False

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            return self._release(text[: min(hits)])
        hold = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        return self._release(text[: len(text) - hold])

    def flush(self) -> str:
        if self.stopped:
            return ""
        return self._release(self.tokenizer.decode(self.ids).rstrip("\ufffd"))

    def _release(self, upto: str) -> str:
        if len(upto) <= self.emitted:
            return ""
        delta = upto[self.emitted :]
        self.emitted = len(upto)
        self.text += delta
        return delta


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        raise ModelError(
            "XComposer2 ran out of GPU memory; use fewer or smaller inputs, or a GPU with more memory"
        ) from exc


class XComposer2Chat:
    dialect = "xcomposer"
    sees_images = True

    def __init__(
        self,
        hub_id_or_path: str | Path = DEFAULT_ID,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        max_batch: int = 8,
    ) -> None:
        folder = resolve(hub_id_or_path)
        tok_path = folder / "tokenizer.model"
        if not tok_path.is_file():
            raise ModelError(f"{folder}: no tokenizer.model; is this an InternLM-XComposer2 checkpoint folder?")
        dtype, dev = default_device_dtype(dtype, device)
        model = load_pretrained(folder, dtype=dtype, device=dev)
        self._setup(model, XComposer2Tokenizer.from_file(tok_path), f"xcomposer2:{hub_id_or_path}", max_batch)

    @classmethod
    def from_model(
        cls, model: XComposer2, tokenizer: XComposer2Tokenizer, name: str = "xcomposer2", max_batch: int = 8
    ) -> "XComposer2Chat":
        """Wrap an already built model and tokenizer (tests, notebooks)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, name, max_batch)
        return self

    def _setup(self, model: XComposer2, tokenizer: XComposer2Tokenizer, name: str, max_batch: int) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_batch = max_batch
        self.usage = TokenUsage()
        self.stop_ids = (tokenizer.eos_id, tokenizer.end_of_turn_id)

    # -- inputs --------------------------------------------------------------------------------

    def _check_length(self, n: int) -> None:
        limit = self.model.config.decoder.max_position_embeddings
        if n > limit:
            raise ModelError(f"prompt of {n} positions is longer than the model's {limit}; shorten the input")

    @torch.inference_mode()
    def _prepare(self, prompt: Prompt) -> PreparedInput:
        tp = tokenize(prompt, self.tokenizer)
        self._check_length(tp.length(self.model.config.vision.tokens_per_image))
        embeds, im_mask = self.model.embed(tp)
        return PreparedInput(embeds, im_mask, tp.text_ids)

    # -- ChatModel -----------------------------------------------------------------------------

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        with _user_errors():
            gen = Generation(self.model, [self._prepare(prompt)], sampling, self.stop_ids, self.usage)
            text = TextStream(self.tokenizer, sampling.stop)
            for step in gen:
                tok = step[0]
                if tok is None or tok in self.stop_ids:
                    break
                delta = text.push(tok)
                if delta:
                    yield delta
                if text.stopped:
                    gen.finish(0)
                    break
            tail = text.flush()
            if tail:
                yield tail

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        out: list[str] = []
        with _user_errors():
            for start in range(0, len(prompts), self.max_batch):
                out.extend(self._complete_batch(prompts[start : start + self.max_batch], sampling))
        return out

    def _complete_batch(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        gen = Generation(self.model, [self._prepare(p) for p in prompts], sampling, self.stop_ids, self.usage)
        texts = [TextStream(self.tokenizer, sampling.stop) for _ in prompts]
        for step in gen:
            for row, tok in enumerate(step):
                if tok is None or tok in self.stop_ids:
                    continue
                texts[row].push(tok)
                if texts[row].stopped:
                    gen.finish(row)
        for t in texts:
            t.flush()
        return [t.text for t in texts]

    @torch.inference_mode()
    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        if not options:
            return []
        with _user_errors():
            return self._choose(prompt, options)

    def _choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        model = self.model
        # Each option is appended to the answer and tokenized with it (as the model would have
        # written it); only the last text run differs between options.
        tps = [tokenize(prompt, self.tokenizer, extra=opt) for opt in options]
        finals = [tp.runs[-1] for tp in tps]
        shared = _common_prefix(finals)
        # Every option keeps at least one token of its own to score (where it has any).
        shared = max(0, min(shared, min(len(f) for f in finals) - 1))
        prefix = TokenizedPrompt(tps[0].runs[:-1] + [finals[0][:shared]], tps[0].images)
        length = prefix.length(model.config.vision.tokens_per_image)
        conts = [f[shared:] for f in finals]
        self._check_length(length + max(len(c) for c in conts))

        embeds, im_mask = model.embed(prefix)
        cache = model.new_cache(1, length + max(len(c) for c in conts))
        has_images = bool(prefix.images)
        hidden = model(embeds[None], cache=cache, im_mask=im_mask[None] if has_images else None)
        self.usage.add(prefill=length)
        first = torch.log_softmax(model.logits(hidden[:, -1]), dim=-1)[0]
        scores = [float(first[c[0]]) if c else 0.0 for c in conts]

        # The continuation positions: all options in one batch on copies of the prefix cache. The
        # last token of an option is only predicted, never fed, so one-token options cost nothing.
        rows = [i for i, c in enumerate(conts) if len(c) > 1]
        if rows:
            width = max(len(conts[i]) - 1 for i in rows)
            ids = torch.zeros(len(rows), width, dtype=torch.long, device=model.device)
            valid = torch.zeros(len(rows), width, dtype=torch.bool, device=model.device)
            for r, i in enumerate(rows):
                feed = conts[i][:-1]
                ids[r, : len(feed)] = torch.tensor(feed, device=model.device)
                valid[r, : len(feed)] = True
            # Right padding: pads come after every real token, so causality keeps them invisible.
            batch_cache = cache.expand(len(rows))
            hidden = model(model.model.tok_embeddings(ids), cache=batch_cache, attention_mask=valid)
            self.usage.add(prefill=sum(len(conts[i]) - 1 for i in rows))
            logp = torch.log_softmax(model.logits(hidden), dim=-1)
            for r, i in enumerate(rows):
                targets = torch.tensor(conts[i][1:], device=model.device)
                scores[i] += float(logp[r, : len(targets)].gather(-1, targets[:, None]).sum())
        return scores


def _common_prefix(seqs: Sequence[list[int]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        tok = seqs[0][i]
        if any(s[i] != tok for s in seqs):
            return i
    return n
