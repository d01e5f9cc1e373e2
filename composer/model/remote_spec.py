"""The `openai:` spec string: which servers, which model, and how to talk to it.

    openai:URL[,URL...][#MODEL][?images=on|off&dialect=generic|xcomposer&parts=interleaved|lmdeploy]

Everything after the URLs is optional: the model defaults to the first one the server lists,
and the dialect, images and parts layout follow from the model id (see `resolve`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from composer.model.base import Dialect, ModelError

Parts = Literal["interleaved", "lmdeploy"]
USAGE = "openai:http://HOST:PORT[,http://HOST2:PORT...][#MODEL][?images=on|off&dialect=generic|xcomposer]"
_OPTIONS = {"images": ("on", "off"), "dialect": ("generic", "xcomposer"), "parts": ("interleaved", "lmdeploy")}


@dataclass(frozen=True)
class RemoteSpec:
    urls: tuple[str, ...]               # base URLs without /v1, in the order given
    model: str | None = None            # None: ask the first healthy server
    images: bool | None = None          # None: decided by the model id
    dialect: Dialect | None = None      # None: decided by the model id
    parts: Parts | None = None          # None: decided by the dialect


@dataclass(frozen=True)
class Speech:
    """How the client speaks to one served model, once its id is known."""

    dialect: Dialect
    sees_images: bool
    parts: Parts


def resolve(spec: RemoteSpec, model_id: str) -> Speech:
    """An id naming XComposer (LMDeploy serves `internlm/internlm-xcomposer2-7b` under that id)
    gets the trained prompts and the photos; anything else the generic, text-only defaults.
    LMDeploy's XComposer2 wrapper reads only the first text part of a message and places images
    at `<IMAGE_TOKEN>` markers in it, hence its own parts layout for that dialect."""
    xcomposer = "xcomposer" in model_id.lower()
    dialect: Dialect = spec.dialect or ("xcomposer" if xcomposer else "generic")
    sees_images = spec.images if spec.images is not None else xcomposer
    parts: Parts = spec.parts or ("lmdeploy" if dialect == "xcomposer" else "interleaved")
    return Speech(dialect, sees_images, parts)


def parse_spec(arg: str) -> RemoteSpec:
    """'http://a:8000/v1,http://b:8000#m?images=on' → RemoteSpec. The `?options` may also come
    before `#MODEL`, as in a URL."""
    head, _, query = arg.partition("?")
    model = ""
    if "#" in query:
        query, _, model = query.partition("#")
    head, _, head_model = head.partition("#")
    model = (model or head_model).strip()
    urls = tuple(_base_url(u, arg) for u in head.split(",") if u.strip())
    if not urls:
        raise ModelError(f"openai backend: {arg!r} names no server; expected {USAGE}")
    if len(set(urls)) != len(urls):
        raise ModelError(f"openai backend: {arg!r} names a server twice")
    options = _options(query, arg)
    images = {"on": True, "off": False}.get(options.get("images", ""))
    return RemoteSpec(urls, model or None, images, options.get("dialect"), options.get("parts"))  # type: ignore[arg-type]


def _base_url(raw: str, arg: str) -> str:
    base = raw.strip().rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    if not base.startswith(("http://", "https://")) or len(base.split("://", 1)[1]) == 0:
        raise ModelError(f"openai backend: {raw.strip()!r} in {arg!r} is not a URL; expected {USAGE}")
    return base


def _options(query: str, arg: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in filter(None, (q.strip() for q in query.split("&"))):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if key not in _OPTIONS:
            raise ModelError(f"openai backend: unknown option {key!r} in {arg!r}; known: {', '.join(_OPTIONS)}")
        if not sep or value not in _OPTIONS[key]:
            raise ModelError(f"openai backend: option {key} must be {' or '.join(_OPTIONS[key])}, got {value!r}")
        options[key] = value
    return options
