"""Tokens run through the model per composed article, with and without prefix reuse, and the
reference demo's call pattern as a baseline.

    python benchmarks/planner_tokens.py [--measured]

Part 1 (protocol count, xcomposer dialect, no model run): the planner runs its real prompts
through a counting backend that renders XComposer2's chat template, counts text tokens with the
embedded model's tokenizer (a stand-in for InternLM2's, close for English) and 256 positions
per image (internlm-xcomposer2-7b), and keeps one KV cache as our local backends do. Pictures
come from a library (4 candidates per slot, as the reference's image service returned).
  reference : every call prefilled from scratch; each choice samples a letter (prefill + 2 decode)
  no reuse  : this planner, every call prefilled from scratch; choices by log-likelihood
  reuse     : this planner with the KV cache of the previous call reused (the default)
Part 2 (--measured): the real embedded model on the generic dialect, reuse on and off.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from llama_cpp import Llama
from PIL import Image

from composer.article import Candidate
from composer.images import load_image
from composer.model.base import ChatModelBase, Prompt, Sampling, TokenUsage
from composer.model.embedded import embedded_gguf_path
from composer.model.xcomposer2.prompting import render
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest

TOKENS_PER_IMAGE = 256
PARAGRAPH = ("The harbour wakes before the town does: boats come in with the night's catch, crates are "
             "stacked on the quay, and the first buyers argue over prices while gulls circle overhead. ")


def article(n_paragraphs: int) -> str:
    return "\n".join(f"{i + 1}. {PARAGRAPH * 2}" for i in range(n_paragraphs))


class CountingXComposer(ChatModelBase):
    """Counts what an XComposer2 backend would run; answers are scripted, valid replies."""

    name, dialect, sees_images = "count:xcomposer2-7b", "xcomposer", True

    def __init__(self, tok: Llama, draft: str, slots: int, reuse: bool, reference: bool):
        self.tok = tok
        self.draft, self.slots, self.reuse, self.reference = draft, slots, reuse, reference
        self.usage = TokenUsage()
        self.cached: list[int] = []
        self.image_ids: dict[int, int] = {}

    def _ids(self, prompt: Prompt, extra: str = "") -> list[int]:
        ids: list[int] = []
        pieces = render(prompt)
        pieces[-1] += extra
        for piece in pieces:
            if isinstance(piece, str):
                ids += self.tok.tokenize(piece.encode(), add_bos=False, special=True)
            else:  # an image: 256 positions that match only the same image
                key = self.image_ids.setdefault(id(piece), -1 - len(self.image_ids))
                ids += [key * 1000 - j for j in range(TOKENS_PER_IMAGE)]
        return ids

    def _run(self, ids: list[int], generated: int) -> None:
        keep = 0
        if self.reuse:
            for a, b in zip(self.cached, ids):
                if a != b:
                    break
                keep += 1
        keep = min(keep, len(ids) - 1)
        self.usage.add(prefill=len(ids) - keep, decode=generated)
        self.cached = ids + [0] * generated

    def _answer(self, prompt: Prompt) -> str:
        text = prompt.turns[-1].text
        if "根据以下标题" in text:
            return self.draft
        if "选择适合插入图像" in text:
            return "、".join(f"<Seg{i}>" for i in range(0, 2 * self.slots, 2))
        return 'A harbour at dawn with fishing boats"'

    def stream(self, prompt: Prompt, sampling: Sampling):
        answer = self._answer(prompt)
        self._run(self._ids(prompt), len(self.tok.tokenize(answer.encode(), add_bos=False)))
        yield answer

    def complete(self, prompts, sampling):
        return ["".join(self.stream(p, sampling)) for p in prompts]

    def choose(self, prompt: Prompt, options):
        if self.reference:  # the demo samples a letter from the full prompt
            self._run(self._ids(prompt), 2)
        else:  # the prompt once, then each option's tokens on the shared cache
            self._run(self._ids(prompt), 0)
            self.usage.prefill += sum(max(0, len(self.tok.tokenize(o.encode(), add_bos=False)) - 1) for o in options)
        return [0.0] * len(options)


class SyntheticLibrary:
    """Distinct small images on disk; every caption matches all of them equally."""

    def __init__(self, folder: Path, n: int):
        self.refs = []
        for i in range(n):
            path = folder / f"{i}.png"
            Image.new("RGB", (32, 32), (i * 37 % 256, i * 91 % 256, i * 53 % 256)).save(path)
            self.refs.append(load_image(path).ref)

    def candidates(self, caption, k, exclude_hashes=()):
        return [Candidate(r, 0.5) for r in self.refs if r.sha256 not in exclude_hashes][:k]


def protocol_counts(tok: Llama, slots: int, library: SyntheticLibrary) -> dict[str, dict[str, int]]:
    out = {}
    draft = article(2 * slots + 2)
    for mode, reuse, reference in (("reference", False, True), ("no reuse", False, False), ("reuse", True, False)):
        model = CountingXComposer(tok, draft, slots, reuse, reference)
        events = list(compose(ComposeRequest("The harbour", image_count=slots, language="zh"), model,
                              library=library, seed=0))
        usage = events[-1].data["usage"]
        out[mode] = {k: v["total"] for k, v in usage["by_stage"].items() if v["total"]} | {"total": usage["total"]}
    return out


def measured(slots: int) -> None:
    from composer.model.embedded import EmbeddedModel
    from composer.testing import FixedDraft  # the same fixed draft the test uses

    root = Path(__file__).resolve().parent.parent
    uploads = [load_image(p) for p in sorted((root / "assets/library").glob("*.jpg"))[:slots]]
    totals = {}
    for reuse in (False, True):
        model = FixedDraft(EmbeddedModel(reuse_prefix=reuse))
        request = ComposeRequest("A morning at the café", image_count=slots)
        events = list(compose(request, model, uploads=uploads, seed=5))
        by_stage = events[-1].data["usage"]["by_stage"]
        totals[reuse] = sum(by_stage.get(k, {}).get("total", 0) for k in ("place", "caption", "select"))
    print(f"  embedded, {slots} pictures: place+caption+choose {totals[False]} tokens without reuse, "
          f"{totals[True]} with: {totals[False] / totals[True]:.1f}x fewer")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--measured", action="store_true", help="also run the embedded model (a few minutes)")
    args = ap.parse_args()
    tok = Llama(model_path=str(embedded_gguf_path()), vocab_only=True, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        library = SyntheticLibrary(Path(tmp), 60)
        print("xcomposer protocol, tokens run through the model (write + place + captions + choices):")
        print(f"{'pictures':>8} {'reference':>10} {'no reuse':>10} {'reuse':>10} {'ref/reuse':>10}"
              f" {'noreuse/reuse':>14}"
              f" {'after-write ref/reuse':>22}")
        for slots in (2, 6, 12):
            c = protocol_counts(tok, slots, library)
            write = c["reuse"].get("write", 0)
            ref, nor, reu = c["reference"]["total"], c["no reuse"]["total"], c["reuse"]["total"]
            print(f"{slots:>8} {ref:>10} {nor:>10} {reu:>10} {ref / reu:>10.2f} {nor / reu:>14.2f}"
                  f" {(ref - write) / (reu - write):>22.2f}")
            print(f"{'':>8} by step, reference: {c['reference']}\n{'':>8} by step, reuse:     {c['reuse']}")
    if args.measured:
        print("measured with the embedded model (generic dialect, 6 uploads chosen by the model):")
        for slots in (2, 6):
            measured(slots)


if __name__ == "__main__":
    main()
