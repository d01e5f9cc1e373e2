"""The ChatModel backend `xcomposer2[:HUB_ID_OR_PATH]` on the native implementation.

- stream / complete: stop on </s> (2) and [UNUSED_TOKEN_145] (92542, end of turn) and on
  Sampling.stop strings; complete runs its prompts as one left-padded batch.
- choose: the log-likelihood of each option as the answer. The prompt (images included) is run
  once; its KV cache is copied for the options, which then run together as one batch.
- usage counts positions actually run through the model (prefill) and tokens generated (decode).
- prefix reuse (`reuse_prefix`, on by default): the KV cache of the last single-prompt call
  (stream, complete with one prompt, choose's prompt) is kept, prompt and generated positions.
  The next such call whose positions begin the same way (same text token ids, the same images at
  the same places: compared by identity, else by a hash of mode, size and pixels) crops it to
  the shared length and runs only the rest, always at least one position to get logits from.
  The planner's prompts about one article share long prefixes (the chained xcomposer caption
  prompts most of all). One sequence is kept, so memory stays bounded; batched complete neither
  uses nor replaces it.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from composer.model.base import ChatModelBase, ModelError, Prompt, Sampling, TokenUsage
from composer.model.sampling import StopStringFilter
from composer.model.xcomposer2.checkpoint import default_device_dtype, load_pretrained, resolve
from composer.model.xcomposer2.generation import Generation, PreparedInput
from composer.model.xcomposer2.internlm2 import KVCache
from composer.model.xcomposer2.model import XComposer2
from composer.model.xcomposer2.prompting import TokenizedPrompt, tokenize
from composer.model.xcomposer2.tokenizer import XComposer2Tokenizer

DEFAULT_ID = "internlm/internlm-xcomposer2-7b"


class TextStream:
    """Detokenizes a growing id list into text deltas, holding back an incomplete UTF-8 character;
    stop strings are the shared StopStringFilter's job (one holdback rule for every backend)."""

    def __init__(self, tokenizer: XComposer2Tokenizer, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.filter = StopStringFilter(stops)
        self.ids: list[int] = []
        self.decoded = 0  # characters of the decoded ids already fed to the filter
        self.text = ""  # everything released so far

    @property
    def stopped(self) -> bool:
        return self.filter.stopped

    def push(self, token: int) -> str:
        if self.stopped:
            return ""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        fresh, self.decoded = text[self.decoded :], len(text)
        return self._release(self.filter.feed(fresh))

    def flush(self) -> str:
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids).rstrip("\ufffd")
        fresh, self.decoded = text[self.decoded :], len(text)
        return self._release(self.filter.feed(fresh) + self.filter.flush())

    def _release(self, delta: str) -> str:
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


@dataclass
class _Kept:
    """The KV cache of one sequence and what sits at each of its positions: a text token id, or
    (image key, index) for an image's tokens."""

    cache: KVCache
    keys: list[Hashable]
    images: list[tuple[Image.Image, str]]  # the images among `keys`, with their pixel hashes


def _image_hash(image: Image.Image) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class XComposer2Chat(ChatModelBase):
    dialect = "xcomposer"
    sees_images = True

    def __init__(
        self,
        model: XComposer2,
        tokenizer: XComposer2Tokenizer,
        name: str = "xcomposer2",
        max_batch: int = 8,
        reuse_prefix: bool = True,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_batch = max_batch
        self.reuse_prefix = reuse_prefix
        self.usage = TokenUsage()
        self.stop_ids = (tokenizer.eos_id, tokenizer.end_of_turn_id)
        self._kept: _Kept | None = None
        self._kept_lock = threading.Lock()  # calls from several threads each take the cache whole

    @classmethod
    def load(
        cls,
        hub_id_or_path: str | Path = DEFAULT_ID,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        max_batch: int = 8,
        reuse_prefix: bool = True,
    ) -> XComposer2Chat:
        """Load an official checkpoint from the hub cache or a local folder."""
        folder = resolve(hub_id_or_path)
        tok_path = folder / "tokenizer.model"
        if not tok_path.is_file():
            raise ModelError(f"{folder}: no tokenizer.model; is this an InternLM-XComposer2 checkpoint folder?")
        dtype, dev = default_device_dtype(dtype, device)
        model = load_pretrained(folder, dtype=dtype, device=dev)
        return cls(model, XComposer2Tokenizer.from_file(tok_path), f"xcomposer2:{hub_id_or_path}", max_batch,
                   reuse_prefix)

    @classmethod
    def from_model(
        cls,
        model: XComposer2,
        tokenizer: XComposer2Tokenizer,
        name: str = "xcomposer2",
        max_batch: int = 8,
        reuse_prefix: bool = True,
    ) -> XComposer2Chat:
        """Wrap an already built model and tokenizer (tests, notebooks): the constructor, by name."""
        return cls(model, tokenizer, name, max_batch, reuse_prefix)

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

    # -- prefix reuse --------------------------------------------------------------------------

    def forget_prefix(self) -> None:
        """Drop the kept KV cache (frees its memory)."""
        with self._kept_lock:
            self._kept = None

    def _position_keys(
        self, tp: TokenizedPrompt, known: list[tuple[Image.Image, str]]
    ) -> tuple[list[Hashable], list[tuple[Image.Image, str]]]:
        n_img = self.model.config.vision.tokens_per_image
        keys: list[Hashable] = []
        images: list[tuple[Image.Image, str]] = []
        for i, run in enumerate(tp.runs):
            keys.extend(run)
            if i < len(tp.images):
                img = tp.images[i]
                # The same object as before needs no hashing (the planner passes the same images).
                digest = next((d for k, d in known if k is img), None) or _image_hash(img)
                images.append((img, digest))
                keys.extend((digest, j) for j in range(n_img))
        return keys, images

    @torch.inference_mode()
    def _resume(self, tp: TokenizedPrompt) -> tuple[KVCache | None, int, list[Hashable], list[tuple[Image.Image, str]]]:
        """Take the kept cache: (cache cropped to the positions shared with `tp`, or None; the
        number of shared positions; the keys and images of `tp`). The kept cache is taken either
        way, so at most one sequence is held at a time."""
        with self._kept_lock:
            kept, self._kept = self._kept, None
        if not self.reuse_prefix:
            return None, 0, [], []
        keys, images = self._position_keys(tp, kept.images if kept else [])
        if kept is None:
            return None, 0, keys, images
        # Keep at least one position to run: its hidden state gives the next token's logits.
        shared = min(_common_prefix([kept.keys, keys]), len(keys) - 1)
        if shared <= 0:
            return None, 0, keys, images
        kept.cache.crop(shared)
        return kept.cache, shared, keys, images

    def _keep(self, cache: KVCache | None, keys: list[Hashable], images: list[tuple[Image.Image, str]]) -> None:
        if not self.reuse_prefix or cache is None or cache.batch != 1 or cache.length != len(keys):
            return  # a call that ended half way (an error) leaves nothing to trust
        with self._kept_lock:
            self._kept = _Kept(cache, keys, images)

    def _single(self, prompt: Prompt, sampling: Sampling) -> tuple[Generation, Callable[[], None]]:
        """A Generation for one prompt that continues the kept cache where it can, and a function
        that keeps its cache (prompt and fed tokens) for the next call once it is done."""
        tp = tokenize(prompt, self.tokenizer)
        self._check_length(tp.length(self.model.config.vision.tokens_per_image))
        cache, shared, keys, images = self._resume(tp)
        with torch.inference_mode():
            embeds, im_mask = self.model.embed(tp, start=shared)
        gen = Generation(self.model, [PreparedInput(embeds, im_mask, tp.text_ids)], sampling, self.stop_ids,
                         self.usage, cache=cache)

        def keep() -> None:
            self._keep(gen.cache, keys + gen.tokens[0][: gen.fed], images)

        return gen, keep

    # -- ChatModel -----------------------------------------------------------------------------

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        with _user_errors():
            gen, keep = self._single(prompt, sampling)
            text = TextStream(self.tokenizer, sampling.stop)
            try:
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
            finally:
                keep()  # also when the consumer stops reading early
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
        if len(prompts) == 1:
            gen, keep = self._single(prompts[0], sampling)
        else:
            gen = Generation(self.model, [self._prepare(p) for p in prompts], sampling, self.stop_ids, self.usage)
            keep = None
        texts = [TextStream(self.tokenizer, sampling.stop) for _ in prompts]
        for step in gen:
            for row, tok in enumerate(step):
                if tok is None or tok in self.stop_ids:
                    continue
                texts[row].push(tok)
                if texts[row].stopped:
                    gen.finish(row)
        if keep is not None:
            keep()
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
        longest = max(len(c) for c in conts)
        self._check_length(length + longest)

        cache, reused, keys, images = self._resume(prefix)
        embeds, im_mask = model.embed(prefix, start=reused)
        if cache is None:
            cache = model.new_cache(1, length)
        hidden = model(embeds[None], cache=cache, im_mask=im_mask[None] if bool(im_mask.any()) else None)
        self.usage.add(prefill=length - reused)
        self._keep(cache, keys, images)  # the options run on copies; the prefix stays as it is
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
            batch_cache = cache.expand(len(rows), extra=width)
            hidden = model(model.model.tok_embeddings(ids), cache=batch_cache, attention_mask=valid)
            self.usage.add(prefill=sum(len(conts[i]) - 1 for i in rows))
            logp = torch.log_softmax(model.logits(hidden), dim=-1)
            for r, i in enumerate(rows):
                targets = torch.tensor(conts[i][1:], device=model.device)
                scores[i] += float(logp[r, : len(targets)].gather(-1, targets[:, None]).sum())
        return scores


def _common_prefix(seqs: Sequence[Sequence[Hashable]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        tok = seqs[0][i]
        if any(s[i] != tok for s in seqs):
            return i
    return n
