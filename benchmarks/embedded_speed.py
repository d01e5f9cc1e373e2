"""Speed of the embedded model, two ways.

    python benchmarks/embedded_speed.py [--tokens 200] [--rounds 3]
    python benchmarks/embedded_speed.py --native DIR [--rounds 5]

Without --native: decode speed of the embedded ChatModel against llama.cpp's own generate on the
same GGUF file. Both run in this process on the same file, same prompt, same thread count,
greedy decoding with no early stop; rounds alternate so that machine noise hits both alike.
Goal: ratio >= 0.8.

With --native DIR: the portable llama.cpp that requirements.txt installs against a -march=native
build of the same llama-cpp-python version in DIR (made once, if DIR is empty, by
`pip install --no-deps --target DIR llama-cpp-python==VERSION --config-settings=cmake.define.GGML_NATIVE=ON`).
Two builds cannot share a process, so each round runs one child per build, alternating; each
child reads a 512-token prompt (prefill, the app's batch threads) and decodes 128 tokens (the
app's decode threads) on the embedded GGUF. Goal: the portable build costs little (ratio near 1).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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


def child() -> None:
    """One measurement on whichever llama_cpp is first on sys.path; JSON on stdout."""
    from composer import runtime
    from composer.model.llama_build import system_info

    policy = runtime.policy()
    llm = Llama(model_path=str(embedded_gguf_path()), n_ctx=1024, n_threads=policy.decode_threads,
                n_threads_batch=policy.batch_threads, n_batch=512, verbose=False)
    prompt = llm.tokenize(PROMPT.encode() * 40, add_bos=False)[:512]
    llm.eval(prompt[:8])  # first touch of the weights, outside the timings
    llm.reset()
    t = time.perf_counter()
    llm.eval(prompt)
    prefill = len(prompt) / (time.perf_counter() - t)
    token, n = prompt[-1], 128
    t = time.perf_counter()
    for _ in range(n):
        llm.eval([token])
        token = int(np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).argmax())
    decode = n / (time.perf_counter() - t)
    print(json.dumps({"prefill": prefill, "decode": decode, "info": system_info().strip()}))


def build_native(target: Path) -> None:
    import llama_cpp

    print(f"building llama-cpp-python {llama_cpp.__version__} with GGML_NATIVE=ON into {target} ...", flush=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--target", str(target),
                    f"llama-cpp-python=={llama_cpp.__version__}", "--config-settings=cmake.define.GGML_NATIVE=ON"],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"built in {time.perf_counter() - t:.0f} s")


def portable_against_native(native: Path, rounds: int) -> None:
    if not (native / "llama_cpp").is_dir():
        build_native(native)
    builds = {"portable": os.environ.get("PYTHONPATH", ""),
              "native": os.pathsep.join(p for p in (str(native), os.environ.get("PYTHONPATH", "")) if p)}
    runs: dict[str, list[dict]] = {name: [] for name in builds}
    for _ in range(rounds):
        for name, path in builds.items():
            env = dict(os.environ, PYTHONPATH=path)
            out = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True, capture_output=True,
                                 text=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
    for name in builds:
        print(f"{name:8}: {runs[name][0]['info']}")
    med = {name: {k: statistics.median(r[k] for r in runs[name]) for k in ("prefill", "decode")} for name in builds}
    for k in ("prefill", "decode"):
        print(f"{k:7} tokens/s: portable {med['portable'][k]:7.1f}   native {med['native'][k]:7.1f}   "
              f"ratio portable/native {med['portable'][k] / med['native'][k]:.2f}  (median of {rounds})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--native", type=Path, help="compare the installed build with a native build in this folder")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child()
    if args.native:
        return portable_against_native(args.native, args.rounds)
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
