"""Tiny random-weight XComposer2 models, a tiny tokenizer, and official-layout checkpoint writing,
for tests and the --tiny benchmark. Nothing here is downloaded."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from composer.model.xcomposer2.config import XComposer2Config, tiny_config
from composer.model.xcomposer2.model import XComposer2
from composer.model.xcomposer2.plora import PLoRALinear
from composer.model.xcomposer2.tokenizer import END_OF_TURN, START_OF_TURN, XComposer2Tokenizer

M = TypeVar("M", bound=nn.Module)

_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A paragraph about mountains, rivers and the sea.",
    "Hello world, this is a tiny tokenizer for tests.",
    "user assistant system",
    "给定文章 根据上述文章，选择适合插入图像的行",
    "适合插入图像的行是 标题是 最合适的图是",
    "<Seg0> <Seg1> <Seg2> A. B. C. D.",
]


def tiny_tokenizer_proto(vocab_size: int = 400) -> bytes:
    """Train a small BPE sentencepiece model in-process (~20 ms). <unk>=0, <s>=1, </s>=2 as in the
    release; the turn tokens get small ids (3, 4) instead of 92542/92543; byte fallback makes any
    text encodable."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_SENTENCES * 10),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="bpe",
        user_defined_symbols=[END_OF_TURN, START_OF_TURN],
        byte_fallback=True,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        num_threads=1,
        minloglevel=2,
    )
    return buf.getvalue()


def tiny_tokenizer() -> XComposer2Tokenizer:
    return XComposer2Tokenizer(tiny_tokenizer_proto())


@torch.no_grad()
def randomize(model: M, seed: int = 0, std: float = 0.05) -> M:
    """Fill every weight with small random values, PLoRA B included (fresh PLoRA layers are
    zero on B and would hide bugs in the image path)."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or "layer_norm" in name or "layrnorm" in name:
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
        else:
            p.copy_(std * torch.randn(p.shape, generator=gen))
    return model


def tiny_model(config: XComposer2Config | None = None, seed: int = 0) -> XComposer2:
    config = config or tiny_config()
    torch.manual_seed(seed)
    return randomize(XComposer2(config), seed).eval()


def official_state_dict(model: XComposer2) -> dict[str, torch.Tensor]:
    names = model.official_keys()
    state = model.state_dict()
    return {key: state[name].detach().clone().contiguous() for key, name in names.items()}


def save_checkpoint(
    model: XComposer2,
    folder: str | Path,
    fmt: str = "safetensors",
    shards: int = 2,
    tokenizer_proto: bytes | None = None,
    state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write config.json, the weights under their official key names (sharded with an index when
    shards > 1) and tokenizer.model: a folder laid out like the hub repository."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_hf_dict(), indent=2))
    if tokenizer_proto is not None:
        (folder / "tokenizer.model").write_bytes(tokenizer_proto)
    state = official_state_dict(model) if state is None else state
    keys = list(state)
    ext = "safetensors" if fmt == "safetensors" else "bin"
    stem = "model" if fmt == "safetensors" else "pytorch_model"

    def write(path: Path, part: dict[str, torch.Tensor]) -> None:
        if fmt == "safetensors":
            from safetensors.torch import save_file

            save_file(part, str(path), metadata={"format": "pt"})
        else:
            torch.save(part, path)

    if shards <= 1:
        write(folder / f"{stem}.{ext}", state)
        return folder
    per = -(-len(keys) // shards)
    weight_map = {}
    for i in range(shards):
        name = f"{stem}-{i + 1:05d}-of-{shards:05d}.{ext}"
        part = {k: state[k] for k in keys[i * per : (i + 1) * per]}
        write(folder / name, part)
        weight_map.update({k: name for k in part})
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / f"{stem}.{ext}.index.json").write_text(json.dumps(index, indent=2))
    return folder


def plora_layers(model: nn.Module) -> list[PLoRALinear]:
    return [m for m in model.modules() if isinstance(m, PLoRALinear)]


def script_next_tokens(chat, tokens: list[int]) -> None:
    """Make the chat model's next-token choices follow `tokens`, one per logits call on a last
    position (for stop and stream tests on a random model). `del chat.model.logits` undoes it."""
    real = chat.model.logits
    queue = list(tokens)

    def fake(hidden):
        out = real(hidden)
        if out.dim() == 2 and queue:
            out[:] = -1e9
            out[:, queue.pop(0)] = 1e9
        return out

    chat.model.logits = fake
