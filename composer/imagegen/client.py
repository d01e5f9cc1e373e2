"""An image engine over HTTP: the request and answer of its API on the chat backend's server
pool (composer.model.remote_pool: spread over the servers, one that is down skipped for a
back-off, 429/5xx retried, the API key from COMPOSER_API_KEY or OPENAI_API_KEY). The two APIs
differ only in their body and answer, which each engine module says (openai_images, a1111).
"""
from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from typing import Any

from composer.imagegen.base import ImageGenError, Size
from composer.imagegen.spec import ImageGenSpec
from composer.images import ImageError, decode_image_bytes
from composer.model.base import ModelError
from composer.model.remote_pool import RetryPolicy, ServerPool, api_key_from_env

# Seconds per socket read: an engine answers once, when the picture is done, and a picture on a
# CPU takes a minute or more (README, "Generated illustrations").
DEFAULT_TIMEOUT = 600.0
MAX_N = 4  # pictures per request: a writer picks among a few, not dozens
MAX_REPLY_BYTES = 64 << 20  # four 2048-pixel PNGs in base64
MAX_PROMPT_CHARS = 2000


class EngineClient(ABC):
    """The ImageGenerator of one API, on a pool of its servers."""

    engine: str = ""

    def __init__(self, spec: ImageGenSpec, timeout: float = DEFAULT_TIMEOUT, api_key: str | None = None,
                 retry: RetryPolicy = RetryPolicy()):
        self.spec = spec
        self.timeout = timeout
        self.pool = ServerPool(spec.urls, retry, api_key if api_key is not None else api_key_from_env())
        self.model = spec.model or ""
        self.size = spec.size
        self.workers = len(spec.urls)

    @property
    def name(self) -> str:
        return f"{self.engine}:{self.model or 'default model'}@{','.join(self.spec.urls)}"

    def generate(self, prompt: str, size: Size, seed: int, n: int = 1, negative_prompt: str = "") -> list[bytes]:
        prompt = " ".join(prompt.split())
        if not prompt:
            raise ImageGenError("the picture's prompt is empty: say what it should show")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ImageGenError(f"the picture's prompt is longer than {MAX_PROMPT_CHARS} characters")
        if not 1 <= n <= MAX_N:
            raise ImageGenError(f"ask for 1 to {MAX_N} pictures at once, not {n}")
        path, body = self.request(prompt, size, seed, n, " ".join(negative_prompt.split()))
        try:
            reply = self.pool.request_json("POST", path, body, self.timeout, max_bytes=MAX_REPLY_BYTES)
        except ImageGenError:
            raise
        except ModelError as exc:
            raise ImageGenError(str(exc)) from None
        self.answered(reply)
        encoded = self.images(reply)
        if len(encoded) != n:
            raise ImageGenError(f"{self.engine} engine at {','.join(self.spec.urls)} sent {len(encoded)} "
                                f"picture{'s' * (len(encoded) != 1)} for {n} asked")
        return [_decoded(e, k, self.engine) for k, e in enumerate(encoded)]

    @abstractmethod
    def request(self, prompt: str, size: Size, seed: int, n: int, negative_prompt: str) -> tuple[str, dict]:
        """The API's path and JSON body."""

    @abstractmethod
    def images(self, reply: dict) -> list[Any]:
        """The base64 pictures in the API's answer (not checked yet)."""

    def answered(self, reply: dict) -> None:  # noqa: B027 - a hook with a default, not abstract
        """What else an answer says (an A1111 answer names its model); nothing by default."""


def _decoded(encoded: Any, k: int, engine: str) -> bytes:
    """One picture's bytes, checked to decode as an image (the same checks as a writer's photo)."""
    if not isinstance(encoded, str) or not encoded:
        raise ImageGenError(f"{engine} engine sent picture {k + 1} as {type(encoded).__name__}, not base64 text")
    if encoded.startswith("data:"):  # some A1111 forks send data URLs
        encoded = encoded.partition(",")[2]
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ImageGenError(f"{engine} engine sent picture {k + 1} in something that is not base64") from None
    try:
        decode_image_bytes(data, f"generated picture {k + 1}")
    except ImageError as exc:
        raise ImageGenError(f"{engine} engine sent a picture that cannot be used: {exc.reason}") from None
    return data
