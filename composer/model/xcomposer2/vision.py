"""Vision side: CLIP ViT-L/14 (transformers' CLIPVisionModel, not rewritten), position embeddings
interpolated to the checkpoint's image size, the projector MLP, and image preprocessing.

The CLIP model is built with `image_size` set to the checkpoint's size (224 for the composition
model), so its position table has (224/14)^2 + 1 rows and its input-size check accepts 224 px
images on current transformers. A weight table of the native 336 px size is interpolated once,
at load time (`interpolate_position_embedding`), as the remote code's `resize_pos` does.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from composer.model.xcomposer2.config import VisionConfig


def clip_config(cfg: VisionConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        layer_norm_eps=cfg.layer_norm_eps,
        hidden_act=cfg.hidden_act,
    )


class VisionTower(nn.Module):
    """Images (N, 3, S, S) -> patch features (N, (S/14)^2, 1024) from CLIP's selected hidden state."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.config = cfg
        # The attribute name matches the checkpoint key prefix `vit.vision_tower.`.
        self.vision_tower = CLIPVisionModel(clip_config(cfg))
        # post_layernorm only touches the pooled CLS output, which is never used; the released
        # checkpoints do not carry its weights (it was an Identity in training).
        self.clip_body.post_layernorm = nn.Identity()

    @property
    def clip_body(self) -> nn.Module:
        # transformers < 5 wraps the transformer in `.vision_model`; 5.x flattened it.
        return getattr(self.vision_tower, "vision_model", self.vision_tower)

    def checkpoint_key(self, name: str) -> str:
        """Our parameter name (relative to this module) -> the official key (relative to `vit.`)."""
        prefix = "vision_tower."
        assert name.startswith(prefix), name
        rest = name[len(prefix) :]
        if rest.startswith("vision_model."):
            return name
        return prefix + "vision_model." + rest

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = self.clip_body.get_submodule("embeddings.patch_embedding").get_parameter("weight").dtype
        select = self.config.select_layer
        out = self.vision_tower(pixel_values.to(dtype), output_hidden_states=select != -1)
        features = out.last_hidden_state if select == -1 else out.hidden_states[select]
        return features[:, 1:]  # drop CLS


def interpolate_position_embedding(weight: torch.Tensor, grid: int) -> torch.Tensor:
    """(1 + n*n, C) CLIP position table -> (1 + grid*grid, C); the CLS row is kept as is and the
    patch rows are resized bicubically (align_corners=False), in fp32, as the remote code does."""
    rows, dim = weight.shape
    old = round((rows - 1) ** 0.5)
    if old * old != rows - 1:
        raise ValueError(f"position table with {rows} rows is not 1 + a square")
    if old == grid:
        return weight
    cls, patches = weight[:1], weight[1:]
    patches = patches.float().reshape(1, old, old, dim).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    patches = patches.permute(0, 2, 3, 1).reshape(grid * grid, dim).to(weight.dtype)
    return torch.cat([cls, patches], dim=0)


def build_projector(vision_hidden: int, hidden: int) -> nn.Sequential:
    """`vision_proj`: Linear, GELU, Linear (indices 0 and 2 are the checkpoint keys)."""
    return nn.Sequential(nn.Linear(vision_hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))


def preprocess(images: Sequence[Image.Image], cfg: VisionConfig) -> torch.Tensor:
    """PIL images -> (N, 3, S, S) float tensor: RGB, bicubic resize to S x S (no crop, aspect
    ratio not kept, as the reference), scale to [0, 1], normalise with CLIP's mean and std."""
    size = cfg.image_size
    mean = torch.tensor(cfg.mean).view(3, 1, 1)
    std = torch.tensor(cfg.std).view(3, 1, 1)
    out = []
    for img in images:
        img = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3)
        t = t.permute(2, 0, 1).float() / 255.0
        out.append((t - mean) / std)
    return torch.stack(out) if out else torch.empty(0, 3, size, size)
