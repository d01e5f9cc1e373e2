"""A loopback image engine for tests, benchmarks and manual runs: no text-to-image weights can
run where the tests run, so this server speaks both documented APIs the way the engines do and
answers with a PNG it draws (Pillow), different for each prompt and seed, the same for the same.

    POST /v1/images/generations   OpenAI Images API (+ vLLM-Omni's seed, negative_prompt, steps)
    POST /sdapi/v1/txt2img        AUTOMATIC1111 API

Every request field is checked for its name and type, as the engines' request models check
them: an unknown field, a wrong type or an out-of-range value is refused (OpenAI-style 400
`{"error": {"message"}}`, FastAPI-style 422 `{"detail": [...]}` for A1111) and kept in
`refused`, so a test sees a client that sends what no engine takes. `die_after=N` stops the
server after N pictures (the request in flight gets its connection closed, the next ones are
refused): an engine that died mid-article. `delay_s`: a slow engine.

    python -m composer.imagegen.testing --port 8188    # for a manual compose with --imagegen
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import random
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from PIL import Image, ImageDraw

from composer.model.remote_testing import LoopbackHTTP, send_json

MODEL = "loopback-sd-turbo"
_SIZE = re.compile(r"^(\d+)x(\d+)$")

# The documented request fields and what each must be (type, check), per API.
_NUMBER = (int, float)
OPENAI_FIELDS: dict[str, tuple[Any, Callable[[Any], bool]]] = {
    "prompt": (str, lambda v: bool(v.strip()) and len(v) <= 32000),
    "model": (str, lambda v: True),
    "n": (int, lambda v: 1 <= v <= 10),
    "size": (str, lambda v: _SIZE.match(v) is not None),
    "response_format": (str, lambda v: v in ("url", "b64_json")),
    "quality": (str, lambda v: v in ("standard", "hd", "auto", "low", "medium", "high")),
    "style": (str, lambda v: v in ("vivid", "natural")),
    "user": (str, lambda v: True),
    # vLLM-Omni's additions
    "seed": (int, lambda v: 0 <= v < 2**32),
    "negative_prompt": (str, lambda v: True),
    "num_inference_steps": (int, lambda v: 1 <= v <= 200),
    "guidance_scale": (_NUMBER, lambda v: 0 <= v <= 50),
}
A1111_FIELDS: dict[str, tuple[Any, Callable[[Any], bool]]] = {
    "prompt": (str, lambda v: True),
    "negative_prompt": (str, lambda v: True),
    "styles": (list, lambda v: all(isinstance(s, str) for s in v)),
    "seed": (int, lambda v: -1 <= v < 2**32),
    "subseed": (int, lambda v: -1 <= v < 2**32),
    "subseed_strength": (_NUMBER, lambda v: 0 <= v <= 1),
    "sampler_name": (str, lambda v: True),
    "scheduler": (str, lambda v: True),
    "batch_size": (int, lambda v: 1 <= v <= 8),
    "n_iter": (int, lambda v: 1 <= v <= 100),
    "steps": (int, lambda v: 1 <= v <= 150),
    "cfg_scale": (_NUMBER, lambda v: 0 <= v <= 30),
    "width": (int, lambda v: 64 <= v <= 2048 and v % 8 == 0),
    "height": (int, lambda v: 64 <= v <= 2048 and v % 8 == 0),
    "restore_faces": (bool, lambda v: True),
    "tiling": (bool, lambda v: True),
    "enable_hr": (bool, lambda v: True),
    "denoising_strength": (_NUMBER, lambda v: 0 <= v <= 1),
    "override_settings": (dict, lambda v: all(isinstance(k, str) for k in v)),
    "override_settings_restore_afterwards": (bool, lambda v: True),
    "send_images": (bool, lambda v: True),
    "save_images": (bool, lambda v: True),
    "do_not_save_samples": (bool, lambda v: True),
    "do_not_save_grid": (bool, lambda v: True),
}


class Refused(Exception):
    pass


def check_fields(body: Any, fields: dict[str, tuple[Any, Callable[[Any], bool]]], required: tuple[str, ...]) -> dict:
    """The body as an engine's request model takes it, or Refused naming the first bad field."""
    if not isinstance(body, dict):
        raise Refused("the request body must be a JSON object")
    for key in required:
        if key not in body:
            raise Refused(f"field required: {key}")
    for key, value in body.items():
        if key not in fields:
            raise Refused(f"unknown field: {key}")
        kind, ok = fields[key]
        numeric = kind is int or kind == _NUMBER
        if (numeric and isinstance(value, bool)) or not isinstance(value, kind) or not ok(value):
            raise Refused(f"invalid value for {key}: {value!r}"[:200])
    return body


def draw(prompt: str, seed: int, width: int, height: int) -> bytes:
    """A PNG that depends on nothing but the prompt, the seed and the size: a gradient sky and a
    few shapes, their colours and places drawn from a generator seeded with both."""
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    rng = random.Random(digest)
    top = tuple(rng.randrange(40, 220) for _ in range(3))
    bottom = tuple(rng.randrange(20, 200) for _ in range(3))
    img = Image.new("RGB", (width, height))
    paint = ImageDraw.Draw(img)
    for y in range(height):
        t = y / max(1, height - 1)
        paint.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for _ in range(rng.randrange(3, 8)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(width // 10, width // 2), rng.randrange(height // 10, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = paint.ellipse if rng.random() < 0.5 else paint.rectangle
        shape([x0, y0, x0 + w, y0 + h], fill=colour)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class LoopbackImageServer(LoopbackHTTP):
    """Both APIs on one loopback port, as stable-diffusion.cpp's sd-server serves them. Every
    accepted body (with its path) is kept in `bodies`, every refused one in `refused`."""

    def __init__(self, die_after: int | None = None, delay_s: float = 0.0, port: int = 0, model: str = MODEL):
        self.model = model
        self.die_after, self.delay_s = die_after, delay_s
        self.bodies: list[tuple[str, dict]] = []
        self.refused: list[tuple[str, str]] = []
        self.auth: list[str | None] = []
        self.pictures = 0
        super().__init__(port)

    def on_get(self, h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v1/models":
            return send_json(h, 200, {"object": "list", "data": [{"id": self.model}]})
        super().on_get(h)

    def on_post(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        self.handle(h, h.path, raw)

    # --- the two APIs ------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, path: str, raw: bytes) -> None:
        if path not in ("/v1/images/generations", "/sdapi/v1/txt2img"):
            return send_json(h, 404, {"error": {"message": f"no route {path}"}})
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        try:
            if path == "/v1/images/generations":
                body = check_fields(body, OPENAI_FIELDS, ("prompt",))
                if body.get("response_format", "url") != "b64_json":
                    raise Refused("this engine keeps no files to link to: ask for response_format b64_json")
                m = _SIZE.match(body.get("size", "512x512"))
                assert m is not None  # checked above
                width, height = int(m.group(1)), int(m.group(2))
                n, seed = body.get("n", 1), body.get("seed", 42)
            else:
                body = check_fields(body, A1111_FIELDS, ())
                width, height = body.get("width", 512), body.get("height", 512)
                n = body.get("batch_size", 1) * body.get("n_iter", 1)
                seed = body.get("seed", -1)
                seed = seed if seed >= 0 else random.randrange(2**31)
            if not 64 <= width <= 2048 or not 64 <= height <= 2048:
                raise Refused(f"size {width}x{height} is out of range")
        except Refused as exc:
            with self.lock:
                self.refused.append((path, str(exc)))
            if path == "/sdapi/v1/txt2img":
                return send_json(h, 422, {"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]})
            return send_json(h, 400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
        with self.lock:
            self.bodies.append((path, body))
            self.auth.append(h.headers.get("Authorization"))
            dying = self.die_after is not None and self.pictures >= self.die_after
            self.pictures += 0 if dying else n
        if dying:
            # Gone mid-article: this connection drops without an answer, the port stops listening.
            h.close_connection = True
            threading.Thread(target=self.close, daemon=True).start()
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        pictures = [draw(body["prompt"], seed + k, width, height) for k in range(n)]
        if path == "/v1/images/generations":
            send_json(h, 200, {"created": int(time.time()), "data": [{"b64_json": _b64(p)} for p in pictures]})
        else:
            info = {"prompt": body.get("prompt", ""), "seed": seed, "width": width, "height": height,
                    "sd_model_name": (body.get("override_settings") or {}).get("sd_model_checkpoint", self.model)}
            send_json(h, 200, {"images": [_b64(p) for p in pictures], "parameters": body, "info": json.dumps(info)})


def main() -> None:
    ap = argparse.ArgumentParser(description="a loopback image engine (both APIs) for manual runs")
    ap.add_argument("--port", type=int, default=8188)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds each picture takes")
    ap.add_argument("--die-after", type=int, help="stop after this many pictures")
    args = ap.parse_args()
    server = LoopbackImageServer(die_after=args.die_after, delay_s=args.delay, port=args.port)
    print(f"serving {server.url} (/v1/images/generations, /sdapi/v1/txt2img)", flush=True)
    try:
        while not server.closed:
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
