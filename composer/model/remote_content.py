"""A Prompt as OpenAI chat messages: text, or content parts with the photos as JPEG data URLs.

Two layouts of a message with images, both valid OpenAI vision requests:
- `interleaved`: text and image_url parts in the planner's order (vLLM and most servers).
- `lmdeploy`: one text part with an `<IMAGE_TOKEN>` where each image stood, then the image
  parts in the same order. LMDeploy's XComposer2 wrapper (v0.14) keeps only the first text part
  of a message and splices the images in at those markers; interleaved parts would lose text.
"""
from __future__ import annotations

import base64
import io
import threading
import weakref
from collections import OrderedDict
from typing import Any

from PIL import Image

from composer.model.base import Prompt, Turn
from composer.model.remote_spec import Parts

MAX_SIDE = 1024  # the server resizes anyway (224 px for XComposer2); this keeps a request small
JPEG_QUALITY = 90
LMDEPLOY_IMAGE_TOKEN = "<IMAGE_TOKEN>"


def image_data_url(image: Image.Image, max_side: int = MAX_SIDE) -> str:
    """`data:image/jpeg;base64,...` of the image, at most `max_side` px on its long side."""
    return _ENCODED.get(image, max_side)


def _encode(image: Image.Image, max_side: int) -> str:
    img = image
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))  # JPEG has no alpha: flatten onto white
        img.paste(rgba, mask=rgba.getchannel("A"))
    elif img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _EncodedImages:
    """The last few encodings, by image identity: an upload is shown to the model in the write
    prompt and again in every choice, and re-encoding a camera photo costs ~0.1 s."""

    def __init__(self, size: int = 32):
        self.size = size
        self.items: OrderedDict[tuple[int, int], tuple[weakref.ref, str]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, image: Image.Image, max_side: int) -> str:
        key = (id(image), max_side)
        with self.lock:
            hit = self.items.get(key)
            if hit is not None and hit[0]() is image:
                self.items.move_to_end(key)
                return hit[1]
        url = _encode(image, max_side)
        with self.lock:
            self.items[key] = (weakref.ref(image), url)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return url


_ENCODED = _EncodedImages()


def to_messages(prompt: Prompt, parts: Parts = "interleaved", note: str = "") -> list[dict[str, Any]]:
    """`note` is appended to the last user message (the answer-prefix request)."""
    last_user = max((i for i, t in enumerate(prompt.turns) if t.role == "user"), default=None)
    messages = []
    for i, turn in enumerate(prompt.turns):
        extra = note if i == last_user else ""
        messages.append({"role": turn.role, "content": _content(turn, parts, extra)})
    if note and last_user is None:
        messages.append({"role": "user", "content": note})
    return messages


def _content(turn: Turn, parts: Parts, note: str) -> str | list[dict[str, Any]]:
    if not turn.images:
        return turn.text + note  # a plain string: every server accepts it
    if parts == "lmdeploy":
        text = "".join(LMDEPLOY_IMAGE_TOKEN if not isinstance(p, str) else _escape_marker(p) for p in turn.parts)
        return [_text(text + note)] + [_image(p) for p in turn.parts if not isinstance(p, str)]
    content: list[dict[str, Any]] = []
    for part in turn.parts:
        if not isinstance(part, str):
            content.append(_image(part))
        elif content and content[-1]["type"] == "text":
            content[-1]["text"] += part
        elif part:
            content.append(_text(part))
    if note:
        content.append(_text(note))
    return content


def _escape_marker(text: str) -> str:
    # The writer's own text must not place an image: a literal marker is broken with a
    # zero-width space (the prompt changes, the article does not).
    return text.replace(LMDEPLOY_IMAGE_TOKEN, "<\u200bIMAGE_TOKEN>")


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image(image: Image.Image) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image_data_url(image)}}
