"""Partial LoRA: a linear layer whose low-rank branch is applied to image tokens only.

    out = W0·x + b                          where im_mask is false (text tokens)
    out = W0·x + b + scale · B·A·x          where im_mask is true (image tokens)

Text tokens therefore see exactly the pretrained decoder weights. Parameter names follow the
official checkpoint (`weight`, `bias`, `Plora_A.weight`, `Plora_B.weight`) so a state dict loads
without renaming.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PLoRALinear(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        alpha: float,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.scale = alpha / rank
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        self.Plora_A = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
        self.Plora_B = nn.Linear(rank, out_features, bias=False, device=device, dtype=dtype)
        if self.weight.device.type != "meta":
            self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        # As in LoRA training: B starts at zero so a fresh layer equals its base.
        nn.init.kaiming_uniform_(self.Plora_A.weight, a=5**0.5)
        nn.init.zeros_(self.Plora_B.weight)

    def forward(self, x: torch.Tensor, im_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`x` is (..., in_features). `im_mask` marks image tokens: a bool tensor of x's leading
        shape, or the flat indices of its true entries (the decoder computes them once per forward,
        saving a device sync in each of its PLoRA layers), or None for "no image tokens"."""
        out = F.linear(x, self.weight, self.bias)
        if im_mask is None:
            return out
        index = im_mask.reshape(-1).nonzero().squeeze(1) if im_mask.dtype == torch.bool else im_mask
        # Only the image rows go through the low-rank branch: image tokens are a minority of a
        # composition prompt, and text rows must stay bit-identical to the base layer.
        rows = x.reshape(-1, self.in_features).index_select(0, index)
        delta = self.Plora_B(self.Plora_A(rows)) * self.scale
        flat = out.reshape(-1, self.out_features)
        flat = flat.index_add(0, index, delta.to(out.dtype))
        return flat.view(out.shape)

    def merged_weight(self) -> torch.Tensor:
        """W0 + scale·B·A: the weight that image tokens effectively see."""
        return self.weight + self.scale * (self.Plora_B.weight @ self.Plora_A.weight)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"rank={self.Plora_A.out_features}, scale={self.scale}, bias={self.bias is not None}"
        )
