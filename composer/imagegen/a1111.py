"""The AUTOMATIC1111 web UI API, `POST /sdapi/v1/txt2img` (also Forge, SD.Next and
stable-diffusion.cpp's sd-server): `prompt`, `negative_prompt`, `seed`, `width`, `height`,
`batch_size`, and `steps` / `cfg_scale` where the spec gives them (else the engine's defaults);
the answer's `images[]` in base64, and `info`, a JSON text that names the model it ran."""
from __future__ import annotations

import json
from typing import Any

from composer.imagegen.base import Size
from composer.imagegen.client import EngineClient

PATH = "/sdapi/v1/txt2img"


class A1111(EngineClient):
    engine = "a1111"

    def request(self, prompt: str, size: Size, seed: int, n: int, negative_prompt: str) -> tuple[str, dict]:
        body: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative_prompt, "seed": seed,
                                "width": size.width, "height": size.height, "batch_size": n, "n_iter": 1,
                                "save_images": False, "send_images": True}
        if self.spec.steps is not None:
            body["steps"] = self.spec.steps
        if self.spec.cfg_scale is not None:
            body["cfg_scale"] = self.spec.cfg_scale
        if self.model:
            # A1111 switches checkpoints per request this way; without it the loaded one runs.
            body["override_settings"] = {"sd_model_checkpoint": self.model}
        return PATH, body

    def images(self, reply: dict) -> list[Any]:
        images = reply.get("images")
        return images if isinstance(images, list) else []

    def answered(self, reply: dict) -> None:
        """The provenance names the model the engine ran when the spec named none."""
        if self.model:
            return
        try:
            info = json.loads(reply.get("info") or "{}")
        except (TypeError, ValueError, RecursionError):
            return
        name = info.get("sd_model_name") if isinstance(info, dict) else None
        if isinstance(name, str) and name.strip():
            self.model = name.strip()[:200]
