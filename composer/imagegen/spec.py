"""The image engine spec strings, parsed with the chat servers' own rules (remote_spec):

    openai-images:URL[,URL...][#MODEL][?size=WxH&steps=N]   OpenAI Images API (sd-server, vLLM-Omni, LocalAI)
    a1111:URL[,URL...][?size=WxH&steps=N&cfg=X]             AUTOMATIC1111 API (A1111, Forge, SD.Next, sd-server)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from composer.imagegen.base import ImageGenError, Size
from composer.model.base import ModelError
from composer.model.remote_spec import parse_options, split_spec

Engine = Literal["openai-images", "a1111"]
ENGINES: tuple[Engine, ...] = ("openai-images", "a1111")
USAGE = ("openai-images:http://HOST:PORT[,http://HOST2:PORT...][#MODEL][?size=WxH&steps=N] or "
         "a1111:http://HOST:PORT[,...][?size=WxH&steps=N&cfg=X]")
DEFAULT_SIZE = Size(768, 512)  # a landscape picture for an article column, quick on SD-Turbo
MAX_STEPS = 150
_OPTIONS: dict[str, tuple[str, ...] | None] = {"size": None, "steps": None, "cfg": None}


@dataclass(frozen=True)
class ImageGenSpec:
    engine: Engine
    urls: tuple[str, ...]
    model: str | None = None
    size: Size = DEFAULT_SIZE
    steps: int | None = None      # None: the engine's own default (right for each model)
    cfg_scale: float | None = None  # None: the engine's own default


def parse_imagegen_spec(spec: str) -> ImageGenSpec:
    kind, sep, arg = spec.strip().partition(":")
    if not sep or kind not in ENGINES:
        raise ImageGenError(f"unknown image engine spec {spec!r}; expected {USAGE}")
    engine: Engine = "a1111" if kind == "a1111" else "openai-images"
    try:
        urls, model, query = split_spec(arg, kind, USAGE)
        options = parse_options(query, arg, kind, _OPTIONS)
    except ModelError as exc:
        raise ImageGenError(str(exc)) from None
    try:
        size = Size.parse(options["size"]) if "size" in options else DEFAULT_SIZE
    except ValueError as exc:
        raise ImageGenError(f"{kind} backend: {exc}") from None
    steps = _number(options.get("steps"), kind, "steps", int)
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise ImageGenError(f"{kind} backend: steps must be from 1 to {MAX_STEPS}, not {steps}")
    cfg = _number(options.get("cfg"), kind, "cfg", float)
    if cfg is not None and not 0 <= cfg <= 30:
        raise ImageGenError(f"{kind} backend: cfg must be from 0 to 30, not {cfg:g}")
    return ImageGenSpec(engine, urls, model, size, steps, cfg)


def _number(text: str | None, kind: str, key: str, cast: type[int] | type[float]):
    if text is None:
        return None
    try:
        return cast(text)
    except ValueError:
        raise ImageGenError(f"{kind} backend: option {key} must be a number, got {text!r}") from None
