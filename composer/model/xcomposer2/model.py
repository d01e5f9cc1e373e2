"""XComposer2: the InternLM2 decoder + LM head, the CLIP vision tower, and the projector.

Attribute names (`model`, `output`, `vit`, `vision_proj`) are the official checkpoint's top-level
key prefixes, so `official_keys()` is a near-identity map.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from composer.model.xcomposer2.config import XComposer2Config
from composer.model.xcomposer2.internlm2 import InternLM2Model, KVCache
from composer.model.xcomposer2.prompting import TokenizedPrompt
from composer.model.xcomposer2.vision import VisionTower, build_projector, preprocess


class XComposer2(nn.Module):
    def __init__(self, config: XComposer2Config) -> None:
        super().__init__()
        self.config = config
        self.model = InternLM2Model(config.decoder)
        self.output = nn.Linear(config.decoder.hidden_size, config.decoder.vocab_size, bias=False)
        self.vit = VisionTower(config.vision)
        self.vision_proj = build_projector(config.vision.hidden_size, config.decoder.hidden_size)

    # -- names ---------------------------------------------------------------------------------

    def official_keys(self) -> dict[str, str]:
        """Official checkpoint key -> our state-dict name, for every parameter and buffer we save."""
        out = {}
        for name in self.state_dict():
            if name.startswith("vit."):
                out["vit." + self.vit.checkpoint_key(name[len("vit.") :])] = name
            else:
                out[name] = name
        return out

    # -- pieces --------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.output.weight.dtype

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        return self.model.new_cache(batch, capacity)

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> projected embeddings (N, tokens_per_image, hidden)."""
        pixels = preprocess(images, self.config.vision).to(self.device)
        return self.vision_proj(self.vit(pixels).to(self.dtype))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM head in at least fp32 (sampling and log-likelihoods in bf16 lose too much)."""
        out = self.output(hidden)
        return out.to(torch.promote_types(out.dtype, torch.float32))

    def embed(self, prompt: TokenizedPrompt, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Splice projected images between the text embeddings: (T, hidden) embeds and a (T,)
        bool im_mask that is True exactly on image positions. With `start`, only positions from
        `start` on (the rest of a prompt whose prefix is cached); images wholly before it are not
        encoded at all."""
        device = self.device
        n_img = self.config.vision.tokens_per_image
        offsets, pos = [], 0
        for i, run in enumerate(prompt.runs):
            pos += len(run)
            if i < len(prompt.images):
                offsets.append(pos)
                pos += n_img
        if not 0 <= start < max(pos, 1):
            raise ValueError(f"embed(start={start}) on a prompt of {pos} positions")
        wanted = [i for i, off in enumerate(offsets) if off + n_img > start]
        encoded = self.encode_images([prompt.images[i] for i in wanted]) if wanted else None
        image_embeds = {i: encoded[j] for j, i in enumerate(wanted)} if encoded is not None else {}
        parts, mask = [], []
        pos = 0
        for i, run in enumerate(prompt.runs):
            skip = max(0, start - pos)
            if skip < len(run):
                ids = torch.tensor(run[skip:], dtype=torch.long, device=device)
                parts.append(self.model.tok_embeddings(ids))
                mask.append(torch.zeros(len(ids), dtype=torch.bool, device=device))
            pos += len(run)
            if i in image_embeds:
                skip = max(0, start - pos)
                parts.append(image_embeds[i][skip:])
                mask.append(torch.ones(n_img - skip, dtype=torch.bool, device=device))
            if i < len(prompt.images):
                pos += n_img
        return torch.cat(parts), torch.cat(mask)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
        im_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states of the new positions (the LM head is applied separately by `logits`, to
        the positions that need it only)."""
        return self.model(inputs_embeds, cache=cache, attention_mask=attention_mask, im_mask=im_mask)
