"""Native InternLM-XComposer2 in PyTorch: PLoRA, the InternLM2 decoder, the CLIP vision tower,
checkpoint loading by official key names, and the ChatModel backend (see README.md here)."""
from composer.model.xcomposer2.config import DecoderConfig, VisionConfig, XComposer2Config, tiny_config
from composer.model.xcomposer2.model import XComposer2
from composer.model.xcomposer2.plora import PLoRALinear
from composer.model.xcomposer2.tokenizer import XComposer2Tokenizer

__all__ = [
    "DecoderConfig",
    "VisionConfig",
    "XComposer2Config",
    "XComposer2",
    "PLoRALinear",
    "XComposer2Tokenizer",
    "tiny_config",
]
