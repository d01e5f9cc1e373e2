"""The InternLM2 decoder with PLoRA, in one readable file.

RMSNorm, rotary embeddings (theta from the config, dynamic NTK scaling), grouped-query attention
through torch's scaled_dot_product_attention, the fused `wqkv` projection in the official layout,
a SwiGLU feed-forward, a preallocated KV cache for incremental decoding, and left-padded batches.

Module and parameter names follow the official checkpoint (`tok_embeddings`, `layers.N.attention.wqkv`,
`attention_norm`, `feed_forward.w1` ...) so its state dict loads by name.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from composer.model.xcomposer2.config import DecoderConfig
from composer.model.xcomposer2.plora import PLoRALinear


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 (bf16 variance loses digits), scale in the input dtype, as the reference.
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class RotaryEmbedding:
    """cos/sin tables for given positions. Not a module: it holds no weights and nothing to load."""

    def __init__(self, cfg: DecoderConfig) -> None:
        self.dim = cfg.head_dim
        self.theta = cfg.rope_theta
        self.max_positions = cfg.max_position_embeddings
        self.scaling = cfg.rope_scaling_type
        self.factor = cfg.rope_scaling_factor

    def base_for(self, seq_len: int) -> float:
        # Dynamic NTK (InternLM2's rope_scaling type "dynamic"): past the trained length, raise the
        # base so the lowest frequency still spans the sequence. A no-op below max_positions, and
        # with factor 1.0 (the release) it only starts beyond 32k tokens.
        if self.scaling == "dynamic" and seq_len > self.max_positions:
            ratio = self.factor * seq_len / self.max_positions - (self.factor - 1)
            return self.theta * ratio ** (self.dim / (self.dim - 2))
        return self.theta

    def __call__(self, positions: torch.Tensor, seq_len: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (B, T) -> cos, sin of shape (B, 1, T, head_dim) in `dtype`."""
        base = self.base_for(seq_len)
        idx = torch.arange(0, self.dim, 2, device=positions.device, dtype=torch.float32)
        inv_freq = 1.0 / (base ** (idx / self.dim))
        pos = positions.float()
        if self.scaling == "linear":
            pos = pos / self.factor
        freqs = pos[..., None] * inv_freq  # (B, T, dim/2)
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]
        return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


class KVCache:
    """Keys and values of every layer for a batch, preallocated and grown by doubling.

    Also remembers which cached positions are real tokens (left padding is not) and each row's next
    position id, so a decode step needs only the new tokens.
    """

    def __init__(
        self,
        num_layers: int,
        batch: int,
        num_kv_heads: int,
        head_dim: int,
        capacity: int,
        device: torch.device | str,
        dtype: torch.dtype,
    ) -> None:
        shape = (batch, num_kv_heads, max(capacity, 1), head_dim)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.valid = torch.zeros(batch, shape[2], dtype=torch.bool, device=device)
        self.next_position = torch.zeros(batch, dtype=torch.long, device=device)
        self.length = 0
        self.has_padding = False  # host-side flag: lets unpadded batches skip building a mask

    @property
    def batch(self) -> int:
        return self.valid.shape[0]

    @property
    def capacity(self) -> int:
        return self.valid.shape[1]

    def reserve(self, extra: int) -> None:
        need = self.length + extra
        if need <= self.capacity:
            return
        new_cap = max(need, 2 * self.capacity)

        def grow(t: torch.Tensor) -> torch.Tensor:  # t: (B, heads, cap, head_dim)
            out = t.new_empty(t.shape[:2] + (new_cap,) + t.shape[3:])
            out[:, :, : self.length] = t[:, :, : self.length]
            return out

        self.keys = [grow(k) for k in self.keys]
        self.values = [grow(v) for v in self.values]
        valid = self.valid.new_zeros(self.batch, new_cap)
        valid[:, : self.length] = self.valid[:, : self.length]
        self.valid = valid

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values of one layer; return all keys/values so far (views)."""
        end = self.length + k.shape[2]
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def commit(self, new_valid: torch.Tensor) -> None:
        end = self.length + new_valid.shape[1]
        self.valid[:, self.length : end] = new_valid
        self.next_position += new_valid.sum(dim=1)
        self.length = end

    def crop(self, length: int) -> None:
        """Forget every position from `length` on (a kept prefix is reused by the next prompt). The
        buffers keep their capacity; later writes overwrite the forgotten positions."""
        if not 0 <= length <= self.length:
            raise ValueError(f"crop({length}) on a cache of {self.length} positions")
        self.valid[:, length:] = False
        self.next_position = self.valid[:, :length].sum(dim=1)
        self.length = length

    def expand(self, batch: int, extra: int = 0) -> KVCache:
        """A copy of a batch-1 cache repeated `batch` times (one shared prefix, many continuations),
        with room for `extra` more positions. Only the cached positions are copied, not the spare
        capacity."""
        if self.batch != 1:
            raise ValueError("expand() takes a cache of batch size 1")
        n = self.length
        cap = max(n + extra, 1)

        first = self.keys[0]
        out = KVCache(len(self.keys), batch, first.shape[1], first.shape[3], cap, first.device, first.dtype)
        for mine, theirs in ((out.keys, self.keys), (out.values, self.values)):
            for layer, t in enumerate(theirs):
                mine[layer][:, :, :n] = t[:, :, :n]
        out.valid[:, :n] = self.valid[:, :n]
        out.next_position = self.next_position.expand(batch).clone()
        out.length = self.length
        out.has_padding = self.has_padding
        return out


class Attention(nn.Module):
    def __init__(self, cfg: DecoderConfig, layer_index: int) -> None:
        super().__init__()
        self.layer_index = layer_index
        self.num_heads = cfg.num_heads
        self.num_kv_heads = cfg.num_kv_heads
        self.head_dim = cfg.head_dim
        self.groups = cfg.kv_groups
        qkv_out = (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim
        self.wqkv = PLoRALinear(cfg.hidden_size, qkv_out, cfg.plora_rank, cfg.plora_alpha, bias=cfg.bias)
        self.wo = PLoRALinear(
            cfg.num_heads * cfg.head_dim, cfg.hidden_size, cfg.plora_rank, cfg.plora_alpha, bias=cfg.bias
        )

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        is_causal: bool,
        cache: KVCache | None,
        im_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        # Official wqkv layout: per kv head, its `groups` query heads, then its key, then its value
        # (rows ordered [h0: q0..q(g-1) k v | h1: ...]); query head h*g+j uses kv head h.
        qkv = self.wqkv(x, im_mask).view(B, T, self.num_kv_heads, self.groups + 2, self.head_dim)
        q = qkv[:, :, :, : self.groups].reshape(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        k = qkv[:, :, :, self.groups].transpose(1, 2)
        v = qkv[:, :, :, self.groups + 1].transpose(1, 2)
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.write(self.layer_index, k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, enable_gqa=True)
        y = y.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim)
        return self.wo(y, im_mask)


class FeedForward(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        r, a = cfg.plora_rank, cfg.plora_alpha
        self.w1 = PLoRALinear(cfg.hidden_size, cfg.intermediate_size, r, a, bias=cfg.bias)  # gate
        self.w3 = PLoRALinear(cfg.hidden_size, cfg.intermediate_size, r, a, bias=cfg.bias)  # up
        self.w2 = PLoRALinear(cfg.intermediate_size, cfg.hidden_size, r, a, bias=cfg.bias)  # down

    def forward(self, x: torch.Tensor, im_mask: torch.Tensor | None) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x, im_mask)) * self.w3(x, im_mask), im_mask)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: DecoderConfig, layer_index: int) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.attention = Attention(cfg, layer_index)
        self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        is_causal: bool,
        cache: KVCache | None,
        im_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, mask, is_causal, cache, im_mask)
        return x + self.feed_forward(self.ffn_norm(x), im_mask)


class InternLM2Model(nn.Module):
    """Embeddings in, final-norm hidden states out (the LM head lives beside it, as in the checkpoint)."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary = RotaryEmbedding(cfg)

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        w = self.tok_embeddings.weight
        cfg = self.config
        return KVCache(cfg.num_layers, batch, cfg.num_kv_heads, cfg.head_dim, capacity, w.device, w.dtype)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
        im_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run new positions through the decoder.

        inputs_embeds: (B, T, hidden). attention_mask: (B, T) bool, False on (left) padding; None
        means no padding. im_mask: (B, T) bool, True on image tokens; None means there are none.
        With a cache, the new positions follow the cached ones and are appended to it.
        """
        B, T, _ = inputs_embeds.shape
        device = inputs_embeds.device
        past = cache.length if cache is not None else 0
        if attention_mask is not None:
            new_valid = attention_mask.bool()
        else:
            new_valid = torch.ones(B, T, dtype=torch.bool, device=device)
        # Position ids count real tokens only, so a left-padded row numbers its tokens 0, 1, ...
        # exactly as when it runs alone.
        start = cache.next_position[:, None] if cache is not None else 0
        positions = (start + new_valid.long().cumsum(dim=1) - 1).clamp(min=0)
        padded = attention_mask is not None or (cache is not None and cache.has_padding)
        if cache is not None:
            cache.reserve(T)
            cache.has_padding = padded

        mask, is_causal = None, False
        if padded or (past > 0 and T > 1):
            key_valid = torch.cat([cache.valid[:, :past], new_valid], dim=1) if cache is not None else new_valid
            q_pos = torch.arange(past, past + T, device=device)[:, None]
            k_pos = torch.arange(past + T, device=device)[None, :]
            # Causal and not padding; each position may always see itself, so that padding rows are
            # never fully masked (an all-masked row is NaN in SDPA); real rows never see padding.
            mask = ((k_pos <= q_pos) & key_valid[:, None, None, :]) | (k_pos == q_pos)
        elif T > 1:
            is_causal = True

        cos, sin = self.rotary(positions, past + T, inputs_embeds.dtype)
        if im_mask is not None:
            im_mask = im_mask.reshape(-1).nonzero().squeeze(1)  # once here, not in every PLoRA layer
        x = inputs_embeds
        for layer in self.layers:
            x = layer(x, cos, sin, mask, is_causal, cache, im_mask)
        if cache is not None:
            cache.commit(new_valid)
        return self.norm(x)
