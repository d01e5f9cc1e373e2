"""Resize-shortest-side, center-crop, normalise: the eval transform of CLIP and EfficientNet, done
with PIL and numpy instead of torchvision tensor ops.

The pixels of torchvision's Resize + CenterCrop + ToTensor + Normalize on a PIL image (PIL
resizes in both; here only the cropped region is resampled), but run in decode threads it does
not wake torch's intra-op thread pool, which on a 2-core machine fought the encoder's forward
pass and cost more than the forward pass itself (~40 ms against ~1 ms per image while indexing).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class CenterCropTransform:
    resize: int  # shortest side after resizing
    crop: int  # square side of the center crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    # Derived from mean and std in __post_init__: not part of the transform's identity.
    _scale: np.ndarray = field(init=False, repr=False, compare=False)
    _offset: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # (x / 255 - mean) / std as one multiply and one subtract per value.
        std = np.asarray(self.std, np.float64)
        offset = np.asarray(self.mean, np.float64) / std
        object.__setattr__(self, "_scale", (1.0 / (255.0 * std)).astype(np.float32).reshape(3, 1, 1))
        object.__setattr__(self, "_offset", offset.astype(np.float32).reshape(3, 1, 1))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":  # convert() copies even an RGB image: ~1 ms of a decode thread's time
            image = image.convert("RGB")
        w, h = image.size
        # torchvision's rule: the short side becomes `resize`, the long side int(resize * long / short).
        if w <= h:
            rw, rh = self.resize, int(self.resize * h / w)
        else:
            rw, rh = int(self.resize * w / h), self.resize
        rw, rh = max(rw, self.crop), max(rh, self.crop)
        top, left = int(round((rh - self.crop) / 2.0)), int(round((rw - self.crop) / 2.0))
        # Resample only the crop's source region straight to crop x crop: the pixels a full resize
        # then crop gives (within two grey levels at a few edge pixels) for half the work.
        sx, sy = w / rw, h / rh
        box = (left * sx, top * sy, (left + self.crop) * sx, (top + self.crop) * sy)
        image = image.resize((self.crop, self.crop), RESAMPLE[self.interpolation], box=box)
        # Channels-first straight from the uint8 HWC view: one pass writes the float tensor.
        pixels = np.empty((3, self.crop, self.crop), np.float32)
        np.multiply(np.asarray(image).transpose(2, 0, 1), self._scale, out=pixels)
        pixels -= self._offset
        return torch.from_numpy(pixels)
