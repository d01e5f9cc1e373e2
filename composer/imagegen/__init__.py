"""Image engines behind one interface (ImageGenerator), and what a generated picture carries.

    load_imagegen("openai-images:http://127.0.0.1:1234")   the OpenAI Images API
    load_imagegen("a1111:http://127.0.0.1:7860")            the AUTOMATIC1111 API
"""
from __future__ import annotations

from composer.imagegen.base import ImageGenerator, ImageGenError, Size
from composer.imagegen.spec import USAGE, ImageGenSpec, parse_imagegen_spec

__all__ = ["USAGE", "ImageGenError", "ImageGenSpec", "ImageGenerator", "Size", "load_imagegen",
           "parse_imagegen_spec"]


def load_imagegen(spec: str | ImageGenSpec, **kwargs) -> ImageGenerator:
    """The engine a spec names; ImageGenError with a one-line message for a bad spec. Nothing is
    sent until the first picture is asked for (an engine may still be loading its model)."""
    from composer.imagegen.a1111 import A1111
    from composer.imagegen.openai_images import OpenAIImages

    parsed = spec if isinstance(spec, ImageGenSpec) else parse_imagegen_spec(spec)
    if parsed.engine == "a1111":
        return A1111(parsed, **kwargs)
    return OpenAIImages(parsed, **kwargs)
