"""The `openai:` spec string: which servers, which model, and how to talk to it.

    openai:URL[,URL...][#MODEL][?images=on|off&dialect=generic|xcomposer&parts=interleaved|lmdeploy]

Everything after the URLs is optional: the model defaults to the first one the server lists,
and the dialect, images and parts layout follow from the model id (see `resolve`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from composer.model.base import Dialect, ModelError

Parts = Literal["interleaved", "lmdeploy"]
USAGE = "openai:http://HOST:PORT[,http://HOST2:PORT...][#MODEL][?images=on|off&dialect=generic|xcomposer]"
_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "images": ("on", "off"), "dialect": ("generic", "xcomposer"), "parts": ("interleaved", "lmdeploy")}


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
    urls, model, query = split_spec(arg, "openai", USAGE)
    options = parse_options(query, arg, "openai", _OPTIONS)
    images = {"on": True, "off": False}.get(options.get("images", ""))
    return RemoteSpec(urls, model, images, options.get("dialect"), options.get("parts"))  # type: ignore[arg-type]


def split_spec(arg: str, kind: str, usage: str) -> tuple[tuple[str, ...], str | None, str]:
    """The parts every server spec shares (`openai:`, and the image engines' `openai-images:` and
    `a1111:`): the servers' base URLs (without /v1), the model after `#` (None: not named) and
    the `?options` text, unparsed."""
    head, _, query = arg.partition("?")
    model = ""
    if "#" in query:
        query, _, model = query.partition("#")
    head, _, head_model = head.partition("#")
    model = (model or head_model).strip()
    urls = tuple(_base_url(u, arg, kind, usage) for u in head.split(",") if u.strip())
    if not urls:
        raise ModelError(f"{kind} backend: {arg!r} names no server; expected {usage}")
    if len(set(urls)) != len(urls):
        raise ModelError(f"{kind} backend: {arg!r} names a server twice")
    return urls, model or None, query


def _base_url(raw: str, arg: str, kind: str, usage: str) -> str:
    base = raw.strip().rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    if not base.startswith(("http://", "https://")) or len(base.split("://", 1)[1]) == 0:
        raise ModelError(f"{kind} backend: {raw.strip()!r} in {arg!r} is not a URL; expected {usage}")
    return base


def parse_options(query: str, arg: str, kind: str, known: Mapping[str, tuple[str, ...] | None]) -> dict[str, str]:
    """`a=x&b=y` → {a: x, b: y}, each key one of `known` and each value one of its choices (None:
    any non-empty value, for the caller to check). Keys are case-insensitive; so are listed values."""
    options: dict[str, str] = {}
    for item in filter(None, (q.strip() for q in query.split("&"))):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key not in known:
            raise ModelError(f"{kind} backend: unknown option {key!r} in {arg!r}; known: {', '.join(known)}")
        choices = known[key]
        if choices is not None:
            value = value.lower()
        if not sep or not value or (choices is not None and value not in choices):
            wanted = " or ".join(choices) if choices is not None else "a value"
            raise ModelError(f"{kind} backend: option {key} must be {wanted}, got {value!r}")
        options[key] = value
    return options
