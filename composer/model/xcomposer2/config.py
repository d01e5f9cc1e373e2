"""Configuration of the native InternLM-XComposer2: decoder, vision tower, projector, PLoRA.

The official config.json (written for the remote code, transformers 4.33) describes the decoder and
`img_size`; the vision tower is fixed to CLIP ViT-L/14-336 in the remote code, so its shape lives in
the defaults here. Tiny test checkpoints add a `vision_config` entry (our extension) so that a
checkpoint folder fully describes its model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class DecoderConfig:
    """InternLM2 decoder with PLoRA (defaults: internlm-xcomposer2-7b)."""

    vocab_size: int = 92544
    hidden_size: int = 4096
    intermediate_size: int = 14336
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 8
    rms_norm_eps: float = 1e-5
    rope_theta: float = 1_000_000.0
    rope_scaling_type: str | None = "dynamic"  # None, "dynamic" (NTK) or "linear"
    rope_scaling_factor: float = 1.0
    max_position_embeddings: int = 32768
    bias: bool = False
    # PLoRA: the low-rank branch applied to image tokens only (rank 256, alpha 256 in the release).
    plora_rank: int = 256
    plora_alpha: float = 256.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_groups(self) -> int:
        return self.num_heads // self.num_kv_heads

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")


@dataclass(frozen=True)
class VisionConfig:
    """CLIP ViT-L/14 at `native_image_size`, run at `image_size` (position embeddings interpolated)."""

    image_size: int = 224  # the checkpoint's img_size: 224 for xcomposer2-7b, 490 for the VL models
    native_image_size: int = 336  # the size CLIP's position embeddings were trained at
    patch_size: int = 14
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_layers: int = 24
    num_heads: int = 16
    layer_norm_eps: float = 1e-5
    hidden_act: str = "quick_gelu"
    # Which CLIP hidden state feeds the projector. The remote code's build_mlp.py uses
    # hidden_states[-1] (the last encoder layer, before post_layernorm); kept configurable.
    select_layer: int = -1
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def native_grid(self) -> int:
        return self.native_image_size // self.patch_size

    @property
    def tokens_per_image(self) -> int:
        return self.grid * self.grid


@dataclass(frozen=True)
class XComposer2Config:
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    max_length: int = 4096  # the official prompt limit (config max_length); longer prompts are refused

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> XComposer2Config:
        """Read an official config.json (plus our optional `vision_config` extension)."""
        scaling = d.get("rope_scaling") or {}
        decoder = DecoderConfig(
            vocab_size=d["vocab_size"],
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_layers=d["num_hidden_layers"],
            num_heads=d["num_attention_heads"],
            num_kv_heads=d.get("num_key_value_heads") or d["num_attention_heads"],
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            rope_theta=float(d.get("rope_theta", 10000.0)),
            rope_scaling_type=scaling.get("type") or scaling.get("rope_type"),
            rope_scaling_factor=float(scaling.get("factor", 1.0)),
            max_position_embeddings=d.get("max_position_embeddings", 2048),
            bias=bool(d.get("bias", False)),
            plora_rank=d.get("plora_rank", 256),
            plora_alpha=float(d.get("plora_alpha", 256)),
        )
        vision_kwargs: dict[str, Any] = dict(d.get("vision_config") or {})
        for key in ("mean", "std"):
            if key in vision_kwargs:
                vision_kwargs[key] = tuple(vision_kwargs[key])
        vision = VisionConfig(**vision_kwargs)
        if "img_size" in d:
            vision = replace(vision, image_size=int(d["img_size"]))
        return cls(decoder=decoder, vision=vision, max_length=int(d.get("max_length", 4096)))

    def to_hf_dict(self) -> dict[str, Any]:
        """The official config.json layout (used to write test checkpoints)."""
        dec = self.decoder
        out: dict[str, Any] = {
            "architectures": ["InternLMXComposer2ForCausalLM"],
            "model_type": "internlmxcomposer2",
            "bias": dec.bias,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 2,
            "hidden_act": "silu",
            "hidden_size": dec.hidden_size,
            "intermediate_size": dec.intermediate_size,
            "num_hidden_layers": dec.num_layers,
            "num_attention_heads": dec.num_heads,
            "num_key_value_heads": dec.num_kv_heads,
            "rms_norm_eps": dec.rms_norm_eps,
            "rope_theta": dec.rope_theta,
            "rope_scaling": (
                {"type": dec.rope_scaling_type, "factor": dec.rope_scaling_factor} if dec.rope_scaling_type else None
            ),
            "max_position_embeddings": dec.max_position_embeddings,
            "vocab_size": dec.vocab_size,
            "tie_word_embeddings": False,
            "max_length": self.max_length,
            "img_size": self.vision.image_size,
        }
        if (dec.plora_rank, dec.plora_alpha) != (256, 256.0):
            out["plora_rank"], out["plora_alpha"] = dec.plora_rank, dec.plora_alpha
        vision = asdict(self.vision)
        vision.pop("image_size")
        if vision != {k: v for k, v in asdict(VisionConfig()).items() if k != "image_size"}:
            out["vision_config"] = vision
        return out


# The released checkpoints (decoder shapes from their config.json files).
XCOMPOSER2_7B = XComposer2Config()
XCOMPOSER2_VL_7B = XComposer2Config(vision=VisionConfig(image_size=490))


def tiny_config(vocab_size: int = 400, image_size: int = 28) -> XComposer2Config:
    """A few-kilobyte model with every feature of the real one (GQA, PLoRA, interpolated CLIP)."""
    return XComposer2Config(
        decoder=DecoderConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            intermediate_size=160,
            num_layers=2,
            num_heads=4,
            num_kv_heads=2,
            rope_theta=10000.0,
            max_position_embeddings=4096,
            plora_rank=8,
            plora_alpha=16.0,
        ),
        vision=VisionConfig(
            image_size=image_size,
            native_image_size=42,
            patch_size=14,
            hidden_size=32,
            intermediate_size=64,
            num_layers=2,
            num_heads=2,
        ),
        max_length=1024,
    )
