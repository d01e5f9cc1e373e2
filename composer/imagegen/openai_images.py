"""The OpenAI Images API, `POST /v1/images/generations`, as sd-server, vLLM-Omni, LocalAI and
Xinference serve it: `prompt`, `n`, `size` "WxH", `response_format` "b64_json"; the answer's
`data[].b64_json`. `seed` and `negative_prompt` (and `num_inference_steps` when the spec asks)
are not OpenAI's own but are what vLLM-Omni documents and the others accept or ignore: a
picture is reproducible only where the engine honours the seed."""
from __future__ import annotations

from typing import Any

from composer.imagegen.base import Size
from composer.imagegen.client import EngineClient
from composer.model.base import ModelError

PATH = "/v1/images/generations"
MODELS_TIMEOUT = 10.0


class OpenAIImages(EngineClient):
    engine = "openai-images"
    _asked = False

    def generate(self, prompt: str, size: Size, seed: int, n: int = 1, negative_prompt: str = "") -> list[bytes]:
        if not self.model and not self._asked:
            self._ask_model()
        return super().generate(prompt, size, seed, n, negative_prompt)

    def _ask_model(self) -> None:
        """The provenance names the model: the one the spec gives, else the first the server
        lists (vLLM-Omni and LocalAI list theirs; an engine that lists none leaves it unnamed)."""
        self._asked = True
        try:
            data = self.pool.request_json("GET", "/v1/models", None, MODELS_TIMEOUT, first=True).get("data")
        except ModelError:
            return
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        if isinstance(first.get("id"), str) and first["id"].strip():
            self.model = first["id"].strip()[:200]

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
