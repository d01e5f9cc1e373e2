"""Load an official InternLM-XComposer2 checkpoint without trust_remote_code.

Reads config.json and the weight files (model.safetensors[.index.json] or
pytorch_model.bin[.index.json]) by their official key names. The model is built on the meta device
and each tensor is converted and placed as it is read, one shard at a time, so host memory stays
near one copy of the weights (on CUDA, near one shard). Every expected key must be found and
every key in the files must be used; otherwise a CheckpointError lists the differences.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from composer.model.base import ModelError
from composer.model.xcomposer2.config import XComposer2Config
from composer.model.xcomposer2.model import XComposer2
from composer.model.xcomposer2.vision import interpolate_position_embedding

# Keys some releases carry that hold no weights we use: buffers recomputed at load time
# (position ids, rotary inverse frequencies) and CLIP's post_layernorm, which acts on the pooled
# CLS output only and is an Identity here.
IGNORED_KEYS = re.compile(r".*(\.position_ids|\.rotary_emb\.inv_freq|\.post_layernorm\.(weight|bias))$")

WEIGHT_FILES = (
    ("model.safetensors.index.json", "safetensors"),
    ("model.safetensors", "safetensors"),
    ("pytorch_model.bin.index.json", "bin"),
    ("pytorch_model.bin", "bin"),
)


class CheckpointError(ModelError):
    """The weight files do not match the model (missing or unexpected keys, wrong shapes)."""


def resolve(hub_id_or_path: str | Path) -> Path:
    """A local folder as is; a hub id through huggingface_hub (download only when online)."""
    path = Path(hub_id_or_path).expanduser()
    if path.is_dir():
        return path
    repo_id = str(hub_id_or_path)
    if path.exists() or repo_id.count("/") != 1 or repo_id.startswith((".", "/", "~")):
        raise ModelError(f"XComposer2 checkpoint {repo_id!r}: not a folder and not a hub id (owner/name)")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "tokenizer.model", "*.safetensors", "*.bin"]
        try:
            # A cached copy first, so an already downloaded model works offline.
            return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
        except Exception:
            if offline:
                raise
        from huggingface_hub import list_repo_files

        files = list_repo_files(repo_id)
        # Download one weight format only (some repos carry both).
        if any(f.endswith(".safetensors") for f in files):
            patterns.remove("*.bin")
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:
        where = "not in the local cache and HF_HUB_OFFLINE is set" if offline else f"could not be downloaded ({exc})"
        raise ModelError(
            f"XComposer2 checkpoint {repo_id!r} {where}. Pass a local folder holding config.json, "
            "tokenizer.model and the weight files, or download it first (huggingface-cli download "
            f"{repo_id})."
        ) from exc


def read_config(folder: Path) -> XComposer2Config:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelError(f"{folder}: no config.json; is this an InternLM-XComposer2 checkpoint folder?")
    try:
        return XComposer2Config.from_hf_dict(json.loads(path.read_text()))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: not an InternLM-XComposer2 config ({exc!r})") from exc


def weight_files(folder: Path) -> tuple[list[Path], str]:
    for name, fmt in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            if name.endswith(".index.json"):
                shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
                missing = [s for s in shards if not (folder / s).is_file()]
                if missing:
                    raise ModelError(f"{folder}: shards listed in {name} are missing: {', '.join(missing)}")
                return [folder / s for s in shards], fmt
            return [path], fmt
    raise ModelError(
        f"{folder}: no weights found (expected one of {', '.join(n for n, _ in WEIGHT_FILES)})"
    )


def iter_tensors(files: list[Path], fmt: str) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, tensor) pairs, one shard at a time; safetensors reads tensor by tensor."""
    for path in files:
        if fmt == "safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt", device="cpu") as f:
                for key in f.keys():
                    yield key, f.get_tensor(key)
        else:
            try:  # mmap keeps a shard out of RAM until its tensors are used
                state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
            except RuntimeError:  # legacy (non-zip) .bin files cannot be mapped
                state = torch.load(path, map_location="cpu", weights_only=True)
            for key in list(state):
                yield key, state.pop(key)
            del state


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor) -> None:
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name)
    if leaf in module._parameters:
        module._parameters[leaf] = nn.Parameter(value, requires_grad=False)
    else:
        module._buffers[leaf] = value


def _list(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_weights(model: XComposer2, files: list[Path], fmt: str, dtype: torch.dtype, device: torch.device) -> None:
    """Fill a (meta) model from weight files by official key; strict both ways."""
    expected = model.official_keys()
    shapes = {name: t.shape for name, t in model.state_dict(keep_vars=True).items()}
    pos_name = next(n for n in shapes if n.endswith("embeddings.position_embedding.weight"))
    loaded: set[str] = set()
    unexpected: list[str] = []
    mismatched: list[str] = []
    for key, tensor in iter_tensors(files, fmt):
        name = expected.get(key)
        if name is None:
            if not IGNORED_KEYS.match(key):
                unexpected.append(key)
            continue
        if name == pos_name and tensor.shape != shapes[name]:
            # A native 336 px table: interpolate to the checkpoint's image size (resize_pos).
            tensor = interpolate_position_embedding(tensor, model.config.vision.grid)
        if tensor.shape != shapes[name]:
            mismatched.append(f"{key}: file {tuple(tensor.shape)} vs model {tuple(shapes[name])}")
            continue
        value = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
        _set_tensor(model, name, value)
        loaded.add(key)
        del tensor
    missing = sorted(set(expected) - loaded)
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys: {_list(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_list(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches: {_list(mismatched)}")
        raise CheckpointError(
            f"checkpoint ({', '.join(str(f.name) for f in files)}) does not match the XComposer2 model: "
            + "; ".join(problems)
        )
    # Non-persistent buffers are not in the files: rebuild what is left on meta.
    for name, buf in list(model.named_buffers()):
        if buf.device.type == "meta":
            if name.endswith("position_ids"):
                _set_tensor(model, name, torch.arange(buf.shape[-1], device=device).expand(1, -1))
            else:  # pragma: no cover - a new buffer type would need handling here
                raise CheckpointError(f"buffer {name} has no value after loading")


def default_device_dtype(
    dtype: torch.dtype | str | None, device: torch.device | str | None
) -> tuple[torch.dtype, torch.device]:
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(dtype, str):
        names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                 "float16": torch.float16, "half": torch.float16, "fp32": torch.float32, "float32": torch.float32}
        if dtype not in names:
            raise ModelError(f"unknown dtype {dtype!r}; use bf16, fp16 or fp32")
        dtype = names[dtype]
    if dtype is None:
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    return dtype, dev


def build_empty(config: XComposer2Config) -> XComposer2:
    with torch.device("meta"):
        return XComposer2(config).eval()


def load_pretrained(
    hub_id_or_path: str | Path,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
) -> XComposer2:
    folder = resolve(hub_id_or_path)
    config = read_config(folder)
    dtype, dev = default_device_dtype(dtype, device)
    files, fmt = weight_files(folder)
    model = build_empty(config)
    load_weights(model, files, fmt, dtype, dev)
    return model
