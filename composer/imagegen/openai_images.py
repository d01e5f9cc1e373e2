"""The OpenAI Images API, `POST /v1/images/generations`, as sd-server, vLLM-Omni, LocalAI and
Xinference serve it: `prompt`, `n`, `size` "WxH", `response_format` "b64_json"; the answer's
`data[].b64_json`. `seed` and `negative_prompt` (and `num_inference_steps` when the spec asks)
are not OpenAI's own but are what vLLM-Omni documents and the others accept or ignore: a
picture is reproducible only where the engine honours the seed."""
from __future__ import annotations

from typing import Any

from composer.imagegen.base import Size
from composer.imagegen.client import EngineClient

PATH = "/v1/images/generations"


class OpenAIImages(EngineClient):
    engine = "openai-images"

    def request(self, prompt: str, size: Size, seed: int, n: int, negative_prompt: str) -> tuple[str, dict]:
        body: dict[str, Any] = {"prompt": prompt, "n": n, "size": str(size), "response_format": "b64_json",
                                "seed": seed}
        if self.model:
            body["model"] = self.model
        if negative_prompt:
            body["negative_prompt"] = negative_prompt
        if self.spec.steps is not None:
            body["num_inference_steps"] = self.spec.steps
        if self.spec.cfg_scale is not None:
            body["guidance_scale"] = self.spec.cfg_scale
        return PATH, body

    def images(self, reply: dict) -> list[Any]:
        data = reply.get("data")
        if not isinstance(data, list):
            return []
        return [item.get("b64_json") if isinstance(item, dict) else item for item in data]
