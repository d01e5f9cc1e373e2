"""Any open_clip model as an ImageTextEncoder: a pretrained tag, a local weights file, or
`none` (random weights from the config, seeded, for tests and benchmarks)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from composer.images import sha256_file
from composer.retrieval.encoder import EncoderBase, encode_images_via_pixels
from composer.retrieval.errors import LibraryError
from composer.retrieval.labels import describe_from_probabilities, with_article
from composer.retrieval.preprocess import RESAMPLE, CenterCropTransform

RANDOM_WEIGHTS = "none"
SCENE_WORDS = Path(__file__).with_name("scene_words.txt")
# The zero-shot prompt of CLIP's paper for a single template.
DESCRIBE_TEMPLATE = "a photo of {}."
# A vocabulary phrase named in a description needs at least this zero-shot probability (softmax
# over ~1400 phrases at the model's logit scale); below it the photo is described as "". Not
# measured: no pretrained CLIP weights were on the machine this was written on.
DESCRIBE_FLOOR = 0.1
_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

log = logging.getLogger(__name__)


@dataclass
class OpenClipEncoder(EncoderBase):
    name: str
    spec: str
    dim: int
    decode_size: int
    model: Any
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    transform: Callable[[Image.Image], torch.Tensor]
    languages: tuple[str, ...] = ("en",)
    # Below this caption-image score a library picture is not placed: CLIP cosine for an
    # unrelated pair is typically below 0.15, for a matching one 0.25-0.35 (not measured here).
    min_match: float = 0.15
    # (phrases, their L2-normalised text embeddings): computed on the first describe, kept.
    _vocabulary: tuple[list[str], np.ndarray] | None = field(default=None, init=False, repr=False)

    @classmethod
    def load(cls, model_name: str, pretrained: str | None = None) -> OpenClipEncoder:
        import open_clip

        if pretrained is None:
            tags = open_clip.list_pretrained_tags_by_model(model_name)
            if not tags:
                raise LibraryError(
                    f"open_clip model {model_name!r} has no pretrained weights; name a weights file "
                    f"(open_clip:{model_name}:/path/to/weights) or '{RANDOM_WEIGHTS}' for random weights"
                )
            # laion2b_s34b_b79k is the strongest ViT-B-32 tag; otherwise the registry's first.
            pretrained = "laion2b_s34b_b79k" if "laion2b_s34b_b79k" in tags else tags[0]
        if pretrained == RANDOM_WEIGHTS:
            weights, name_tag, spec_tag = None, RANDOM_WEIGHTS, RANDOM_WEIGHTS
        elif Path(pretrained).is_file():
            path = Path(pretrained).resolve()
            weights, name_tag, spec_tag = str(path), f"sha256-{sha256_file(path)[:16]}", str(path)
        else:
            weights, name_tag, spec_tag = pretrained, pretrained, pretrained
        if model_name not in open_clip.list_models() and not model_name.startswith(("hf-hub:", "local-dir:")):
            raise LibraryError(f"unknown open_clip model {model_name!r} (see open_clip.list_models())")
        try:
            # Seeded so that `none` means the same random weights in every process (resume, tests).
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model, _, transform = open_clip.create_model_and_transforms(
                    model_name, pretrained=weights, pretrained_text=weights is not None
                )
            tokenizer = open_clip.get_tokenizer(model_name)
        except LibraryError:
            raise
        except Exception as exc:  # open_clip raises many kinds for "weights not found / no network"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LibraryError(
                f"cannot load open_clip {model_name} weights {pretrained!r} ({first}); "
                "pass a local weights file or use --encoder embedded"
            ) from exc
        model.eval()
        transform = _fast_transform(model) or transform
        image_size = model.visual.image_size
        input_size = int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)
        if _has_tensor(model, "text_projection"):
            dim = int(model.text_projection.shape[1])
        else:
            dim = _probe_dim(model, input_size)
        return cls(
            # The xlm-roberta text towers were trained on multilingual captions (LAION-5B).
            languages=("en", "zh") if "xlm-roberta" in model_name else ("en",),
            name=f"open_clip:{model_name}:{name_tag}",
            spec=f"open_clip:{model_name}:{spec_tag}",
            dim=dim,
            decode_size=input_size,
            model=model,
            tokenizer=tokenizer,
            transform=transform,
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return self.model.encode_image(pixels, normalize=True).float().numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return encode_images_via_pixels(self, images)

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        """Zero-shot over the vocabulary (ImageNet classes and scene_words.txt): the phrases the
        photo most likely shows, "a rocket; a rocket launch"; "" where none is likely enough."""
        if not images:
            return []
        phrases, vectors = self.vocabulary()
        scale = float(self.model.logit_scale.detach().exp()) if _has_tensor(self.model, "logit_scale") else 100.0
        logits = scale * self.encode_images(images) @ vectors.T
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return describe_from_probabilities(probs, phrases, DESCRIBE_FLOOR)

    def vocabulary(self) -> tuple[list[str], np.ndarray]:
        if self._vocabulary is None:
            phrases = vocabulary_phrases()
            vectors = np.concatenate([
                self.encode_texts([DESCRIBE_TEMPLATE.format(p) for p in phrases[i:i + 256]])
                for i in range(0, len(phrases), 256)
            ])
            self._vocabulary = (phrases, vectors)
        return self._vocabulary

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            return self.model.encode_text(self.tokenizer(list(texts)), normalize=True).float().numpy()


def vocabulary_phrases() -> list[str]:
    """ImageNet's class names as open_clip ships them (cleaned for zero-shot prompts), then the
    project's scene and object phrases; each phrase once."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    lines = SCENE_WORDS.read_text(encoding="utf-8").splitlines()
    phrases = [with_article(name) for name in IMAGENET_CLASSNAMES]
    phrases += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    first_by_key: dict[str, str] = {}  # case-insensitive; the first spelling wins, in order
    for p in phrases:
        first_by_key.setdefault(p.lower(), p)
    return list(first_by_key.values())


def weights_available(model_name: str, pretrained: str | None) -> bool:
    """Whether the weights are on this machine already (a file, or the hub cache): never downloads."""
    if pretrained is None:
        return False
    if Path(pretrained).is_file():
        return True
    try:
        import open_clip
        from huggingface_hub import try_to_load_from_cache

        repo = (open_clip.get_pretrained_cfg(model_name, pretrained) or {}).get("hf_hub", "").rstrip("/")
        return bool(repo) and any(isinstance(try_to_load_from_cache(repo, f), str) for f in _WEIGHT_FILES)
    except Exception:  # a broken cache means "not available", never a crash
        return False


def _fast_transform(model: Any) -> CenterCropTransform | None:
    """The same eval transform without torch ops, where the model's preprocessing is the common
    resize-shortest + center-crop; None (keep open_clip's) for anything else."""
    cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    size = cfg.get("size")
    side = size if isinstance(size, int) else (size[0] if size and size[0] == size[1] else None)
    if (
        side is None
        or cfg.get("resize_mode", "shortest") != "shortest"
        or cfg.get("interpolation") not in RESAMPLE
        or cfg.get("mode", "RGB") != "RGB"
    ):
        return None
    return CenterCropTransform(
        resize=int(side), crop=int(side), mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
        interpolation=cfg["interpolation"],
    )


def _has_tensor(model: Any, attr: str) -> bool:
    return isinstance(getattr(model, attr, None), torch.Tensor)


def _probe_dim(model: Any, input_size: int) -> int:
    with torch.inference_mode():
        return int(model.encode_image(torch.zeros(1, 3, input_size, input_size)).shape[-1])


