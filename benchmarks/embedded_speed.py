"""Decode speed of the embedded ChatModel against llama.cpp's own generate on the same GGUF file.

    python benchmarks/embedded_speed.py [--tokens 200] [--rounds 3]

Both run in this process on the same file, same prompt, same thread count, greedy decoding
with no early stop; rounds alternate so that machine noise hits both alike. Goal: ratio ≥ 0.8.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from llama_cpp import Llama

import composer  # noqa: F401  (first: its thread policy must precede llama_cpp, see composer/runtime.py)
from composer.model.base import Prompt, Sampling
from composer.model.embedded import EmbeddedModel, embedded_gguf_path

PROMPT = "Write a long, detailed article about the history of coffee houses in Europe."


def ours(model: EmbeddedModel, n: int) -> float:
    model._cached = []  # a cold cache each round, as the reference gets
    before = model.usage.decode
    t = time.perf_counter()
    for _ in model.stream(Prompt.user(PROMPT), Sampling(temperature=0, repetition_penalty=1.0, max_new_tokens=n)):
        pass
    dt = time.perf_counter() - t
    return (model.usage.decode - before + 1) / dt  # +1: the first token comes from the prefill logits


def reference(llm: Llama, tokens: list[int], n: int) -> float:
    llm.reset()
    count = 0
    t = time.perf_counter()
    for _ in llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
        count += 1
        if count >= n:
            break
    return count / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    model = EmbeddedModel(n_threads=threads)
    llm = Llama(model_path=str(embedded_gguf_path()), n_ctx=4096, n_threads=threads, n_batch=512, verbose=False)
    tokens = model.prompt_tokens(Prompt.user(PROMPT))
    a, b = [], []
    for _ in range(args.rounds):
        b.append(reference(llm, tokens, args.tokens))
        a.append(ours(model, args.tokens))
    ra, rb = statistics.median(a), statistics.median(b)
    print(f"embedded ChatModel : {ra:7.1f} tokens/s (prefill + {args.tokens} decode, median of {args.rounds})")
    print(f"llama.cpp generate : {rb:7.1f} tokens/s")
    print(f"ratio              : {ra / rb:.2f}  (goal >= 0.8)")


if __name__ == "__main__":
    main()
