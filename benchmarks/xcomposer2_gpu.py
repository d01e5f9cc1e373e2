"""Native XComposer2 decoder speed against transformers' LlamaForCausalLM of the same shape.

Builds the real internlm-xcomposer2-7b shape (InternLM2-7B + PLoRA + CLIP ViT-L) with random
weights in bf16 and measures, at batch 1 and 8: prefill tokens/s and decode tokens/s (KV-cached,
one token per step, greedy), plus peak GPU memory; then the same for a LlamaForCausalLM with the
decoder's shape (no PLoRA, no vision tower), in the same run. Prints ratios (ours / Llama).
Not a test, not CI: needs a GPU with ~40 GB free (the models run one after the other).

    python benchmarks/xcomposer2_gpu.py            # GPU, 7B shape, well under 5 minutes
    python benchmarks/xcomposer2_gpu.py --tiny     # CPU, tiny config: checks the script itself
"""
from __future__ import annotations

import argparse
import gc
import inspect
import time
from collections.abc import Callable

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from composer.model.xcomposer2.checkpoint import build_empty
from composer.model.xcomposer2.config import XCOMPOSER2_7B, XComposer2Config, tiny_config


def materialize_random(model: nn.Module, dtype: torch.dtype, device: torch.device, std: float = 0.02) -> None:
    """Give a meta-device model random weights directly on `device` in `dtype` (no fp32 copy)."""
    gen = torch.Generator(device=device).manual_seed(0)
    for name, p in list(model.named_parameters()):
        mod_name, _, leaf = name.rpartition(".")
        mod = model.get_submodule(mod_name)
        t = torch.empty(p.shape, dtype=dtype, device=device)
        if "norm" in name or "layrnorm" in name:
            t.fill_(1.0)
        else:
            t.normal_(0.0, std, generator=gen)
        mod._parameters[leaf] = nn.Parameter(t, requires_grad=False)
    for name, b in list(model.named_buffers()):
        if b.device.type == "meta":
            mod_name, _, leaf = name.rpartition(".")
            mod = model.get_submodule(mod_name)
            if leaf == "position_ids":
                mod._buffers[leaf] = torch.arange(b.shape[-1], device=device).expand(1, -1)


def llama_like(cfg: XComposer2Config, dtype: torch.dtype, device: torch.device) -> LlamaForCausalLM:
    d = cfg.decoder
    lc = LlamaConfig(
        vocab_size=d.vocab_size, hidden_size=d.hidden_size, intermediate_size=d.intermediate_size,
        num_hidden_layers=d.num_layers, num_attention_heads=d.num_heads, num_key_value_heads=d.num_kv_heads,
        rms_norm_eps=d.rms_norm_eps, max_position_embeddings=d.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": d.rope_theta}, attention_bias=False,
        tie_word_embeddings=False,
    )
    lc._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = LlamaForCausalLM(lc)
    materialize_random(model, dtype, device)
    # Rotary inverse frequencies are a computed (non-persistent) buffer: rebuild on the device.
    rotary_cls = type(model.model.rotary_emb)
    with torch.device(device):
        model.model.rotary_emb = rotary_cls(config=lc).to(device)
    return model.eval()


def timed(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


class Ours:
    name = "native xcomposer2"

    def __init__(self, cfg: XComposer2Config, dtype: torch.dtype, device: torch.device) -> None:
        self.model = build_empty(cfg)
        materialize_random(self.model, dtype, device)
        self.device = device

    def prefill(self, ids: torch.Tensor, steps: int, im_mask: torch.Tensor | None = None):
        m = self.model
        cache = m.new_cache(ids.shape[0], ids.shape[1] + steps)
        hidden = m(m.model.tok_embeddings(ids), cache=cache, im_mask=im_mask)
        return cache, m.logits(hidden[:, -1]).argmax(-1)

    def decode(self, state, steps: int) -> None:
        m = self.model
        cache, nxt = state
        for _ in range(steps):
            nxt = m.logits(m(m.model.tok_embeddings(nxt[:, None]), cache=cache)[:, -1]).argmax(-1)


class Llama:
    name = "transformers Llama"

    def __init__(self, cfg: XComposer2Config, dtype: torch.dtype, device: torch.device) -> None:
        self.model = llama_like(cfg, dtype, device)
        self.device = device
        # transformers 5 renamed past_key_values to cache; accept either.
        self.cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def prefill(self, ids: torch.Tensor, steps: int, im_mask: torch.Tensor | None = None):
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        return self._cache(out), out.logits[:, -1].argmax(-1)

    def _cache(self, out):
        return getattr(out, "cache", None) or out.past_key_values

    def decode(self, state, steps: int) -> None:
        past, nxt = state
        for _ in range(steps):
            kwargs = {self.cache_arg: past}
            out = self.model(input_ids=nxt[:, None], use_cache=True, logits_to_keep=1, **kwargs)
            past, nxt = self._cache(out), out.logits[:, -1].argmax(-1)


@torch.inference_mode()
def measure(runner, vocab: int, batches: list[int], prompt_len: int, steps: int, image_tokens: int) -> dict:
    dev = runner.device
    results: dict[str, float] = {}
    gen = torch.Generator().manual_seed(1)
    for b in batches:
        ids = torch.randint(0, vocab, (b, prompt_len), generator=gen).to(dev)
        runner.decode(runner.prefill(ids, 4), 4)  # warm-up at this shape (kernels, allocator)
        # The prefill's cache is kept in a list so the timed call can hand it back to the decode.
        prefilled: list = []
        t = timed(lambda ids=ids, out=prefilled: out.append(runner.prefill(ids, steps)), dev)
        results[f"prefill tok/s b={b}"] = b * prompt_len / t
        t = timed(lambda state=prefilled[0]: runner.decode(state, steps), dev)
        results[f"decode tok/s b={b}"] = b * steps / t
        del prefilled  # frees this batch's cache before the next batch allocates its own
    if isinstance(runner, Ours) and image_tokens:
        ids = torch.randint(0, vocab, (1, prompt_len), generator=gen).to(dev)
        im = torch.zeros(1, prompt_len, dtype=torch.bool, device=dev)
        im[:, 8 : 8 + image_tokens] = True
        runner.prefill(ids, 1, im_mask=im)  # warm-up
        t = timed(lambda: runner.prefill(ids, 1, im_mask=im), dev)
        results[f"prefill tok/s b=1, {image_tokens} image tokens (PLoRA)"] = prompt_len / t
    if dev.type == "cuda":
        results["peak GPU memory GiB"] = torch.cuda.max_memory_allocated(dev) / 2**30
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny config on CPU in fp32 (checks the script)")
    ap.add_argument("--prompt-len", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="decode steps")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = ap.parse_args()

    if args.tiny:
        cfg, dtype, dev = tiny_config(), torch.float32, torch.device("cpu")
        prompt_len, steps = args.prompt_len or 64, args.steps or 16
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU: run with --tiny for the CPU check")
        cfg, dtype, dev = XCOMPOSER2_7B, torch.bfloat16, torch.device("cuda")
        prompt_len, steps = args.prompt_len or 512, args.steps or 64
    image_tokens = min(cfg.vision.tokens_per_image, prompt_len // 2)
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), dtype {dtype}, "
          f"prompt {prompt_len}, decode steps {steps}, batches {args.batches}")

    table = {}
    for cls in (Ours, Llama):
        start = time.perf_counter()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        runner = cls(cfg, dtype, dev)
        n = sum(p.numel() for p in runner.model.parameters())
        table[cls.name] = measure(runner, cfg.decoder.vocab_size, args.batches, prompt_len, steps, image_tokens)
        table[cls.name]["parameters (B)"] = n / 1e9
        print(f"{cls.name}: done in {time.perf_counter() - start:.1f}s")
        del runner
        gc.collect()

    ours, ref = table[Ours.name], table[Llama.name]
    width = max(len(k) for k in ours)
    print(f"\n{'metric':<{width}}  {'native':>12}  {'llama':>12}  {'ratio':>7}")
    for key, value in ours.items():
        other = ref.get(key)
        ratio = f"{value / other:7.2f}" if other else "       "
        other_s = f"{other:12.2f}" if other is not None else f"{'-':>12}"
        print(f"{key:<{width}}  {value:12.2f}  {other_s}  {ratio}")
    print("\nratio = native / llama (tokens/s: >1 is faster; memory and parameters: native includes "
          "PLoRA weights and the CLIP vision tower)")


if __name__ == "__main__":
    main()
