"""Concurrent writers against one and two llama.cpp servers (the openai: backend), beside the
same composes run in-process on the embedded model (one model, calls serialised, as the app
runs it).

    python benchmarks/remote_load.py [--writers 1 4 8] [--composes 2] [--threads N] [--length 150]
    python benchmarks/remote_load.py --quick      # a smoke run: 1 and 2 writers, short articles

Each writer is a thread composing articles one after another (different seeds). Printed per
configuration and writer count: articles per minute, and p50/p95 time to first token (compose
start to the first streamed text). Then the ratio two servers / one server at the largest writer
count. Each server gets --threads threads, so two servers have twice the cores of one: the
scale-out a newsroom buys with a second GPU. Goal ≥ 1.6 on a machine with the cores for it; with
fewer cores than 2 x threads the two servers share them and the ratio says so.
"""
from __future__ import annotations

import argparse
import math
import os
import threading
import time
from pathlib import Path

from composer.images import load_image
from composer.model.base import ModelError
from composer.model.remote import RemoteChatModel
from composer.model.remote_testing import LlamaServer
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest

ROOT = Path(__file__).resolve().parent.parent

PHOTOS = [ROOT / "assets/library/cat.jpg", ROOT / "assets/library/coffee.jpg"]


def request(length: int) -> ComposeRequest:
    # One outline point: the embedded model then gets the same single write prompt as the
    # remote one (it writes one part per point when there are several).
    return ComposeRequest("A morning at the café", ("the cat on the window seat",),
                          "The café opens at seven. A tabby cat sleeps on the window seat.",
                          length=length, image_count=2)


def one_compose(model, req, uploads, seed) -> tuple[float, float]:
    """(time to first token, total time) of one compose."""
    start = time.perf_counter()
    first = None
    for event in compose(req, model, uploads=uploads, seed=seed):
        if first is None and event.kind == "text":
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (first if first is not None else total), total


def run_writers(model, writers: int, composes: int, req, uploads) -> dict:
    ttfts: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for k in range(composes):
            try:
                ttft, _ = one_compose(model, req, uploads, seed=1000 * w + k)
            except ModelError as exc:
                with lock:
                    errors.append(str(exc))
                continue
            with lock:
                ttfts.append(ttft)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"per_min": 60.0 * len(ttfts) / wall, "p50": percentile(ttfts, 50), "p95": percentile(ttfts, 95),
            "done": len(ttfts), "errors": errors, "wall": wall}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]  # nearest rank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--composes", type=int, default=2, help="articles per writer")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="threads per server")
    ap.add_argument("--length", type=int, default=150, help="words per article")
    ap.add_argument("--no-inprocess", action="store_true", help="skip the in-process column")
    ap.add_argument("--quick", action="store_true", help="smoke run: writers 1 2, one short article each")
    args = ap.parse_args()
    if args.quick:
        args.writers, args.composes, args.length = [1, 2], 1, 40
    req = request(args.length)
    uploads = [load_image(p) for p in PHOTOS]
    results: dict[tuple[str, int], dict] = {}
    print(f"{os.cpu_count()} cores; {args.threads} thread(s) per server and in-process; "
          f"{args.composes} article(s) of ~{args.length} words per writer", flush=True)

    if not args.no_inprocess:
        from composer.model.embedded import EmbeddedModel
        from composer.model.serialized import SerializedModel

        model = SerializedModel(EmbeddedModel(n_threads=args.threads))
        for w in args.writers:
            results[("in-process", w)] = report("in-process", w, run_writers(model, w, args.composes, req, uploads))
        del model

    with LlamaServer(n_threads=args.threads) as a:
        one = RemoteChatModel(f"{a.url}#smollm2")
        for w in args.writers:
            results[("one server", w)] = report("one server", w, run_writers(one, w, args.composes, req, uploads))
        with LlamaServer(n_threads=args.threads) as b:
            two = RemoteChatModel(f"{a.url},{b.url}#smollm2")
            for w in args.writers:
                results[("two servers", w)] = report("two servers", w, run_writers(two, w, args.composes, req, uploads))
            print("requests served: " + ", ".join(f"{h['url']} {h['served']}" for h in two.pool.health()))

    top = max(args.writers)
    ratio = results[("two servers", top)]["per_min"] / max(results[("one server", top)]["per_min"], 1e-9)
    print(f"\nratio two servers / one server at {top} writers: {ratio:.2f} articles/min "
          f"(goal >= 1.6 with {2 * args.threads} free cores; this machine has {os.cpu_count()})")
    if ("in-process", top) in results:
        r = results[("one server", top)]["per_min"] / max(results[("in-process", top)]["per_min"], 1e-9)
        print(f"ratio one server / in-process at {top} writers: {r:.2f}")


def report(config: str, writers: int, r: dict) -> dict:
    errors = f"  errors: {len(r['errors'])} ({r['errors'][0][:80]})" if r["errors"] else ""
    print(f"{config:12s} writers {writers:2d}: {r['per_min']:6.2f} articles/min   first token p50 {r['p50']:6.2f} s"
          f"  p95 {r['p95']:6.2f} s   ({r['done']} articles in {r['wall']:.1f} s){errors}", flush=True)
    return r


if __name__ == "__main__":
    main()
