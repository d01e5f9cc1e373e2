"""What a writer asks for: title, outline, materials, style, length, language, picture count."""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from composer.jsonfile import JSONFileError, read_json

ImageCount = int | Literal["auto"]
MAX_IMAGES = 12
MAX_SEED = 2**31 - 1
# C0 and C1 control characters and DEL, except newline and tab: invisible in an editor, yet NUL,
# ESC and BEL would reach the .md, the HTML <title> and a terminal raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text without control characters; CR and CRLF line ends become newlines first."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


class RequestError(ValueError):
    """The request cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class ComposeRequest:
    title: str
    outline: tuple[str, ...] = ()
    materials: str = ""
    style: str = ""
    length: int = 400
    language: Literal["en", "zh"] = "en"
    image_count: ImageCount = "auto"
    headings: bool | None = None  # each outline point a heading over its part; None: with 3+ points
    # Each part written from the material passages chosen for it, unsupported sentences dropped
    # (composer/planner/grounded.py); None: for small models.
    materials_first: bool | None = None

    @property
    def use_headings(self) -> bool:
        return self.headings if self.headings is not None else len(self.outline) >= 3

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outline"] = list(self.outline)
        return d

    @classmethod
    def from_dict(cls, data: Any) -> ComposeRequest:
        if not isinstance(data, dict):
            raise RequestError("the request must be a JSON object")
        title = data.get("title")
        title = printable(title).strip() if isinstance(title, str) else None
        if not title:
            raise RequestError('missing "title" (a non-empty string)')
        return cls(
            title=title,
            outline=_outline(data.get("outline", ())),
            materials=_text(data, "materials"),
            style=_text(data, "style"),
            length=_length(data.get("length", 400)),
            language=_language(data.get("language", "en")),
            image_count=parse_image_count(data.get("image_count", "auto")),
            headings=_flag(data, "headings"),
            materials_first=_flag(data, "materials_first"),
        )

    def with_image_count(self, count: ImageCount) -> ComposeRequest:
        return ComposeRequest(**{**self.__dict__, "image_count": count})


def load_request(path: str | Path) -> ComposeRequest:
    path = Path(path)
    try:
        data = read_json(path, "request file")
    except JSONFileError as exc:
        raise RequestError(str(exc)) from exc
    try:
        return ComposeRequest.from_dict(data)
    except RequestError as exc:
        raise RequestError(f"{path}: {exc}") from exc


def request_from_json(text: str) -> tuple[dict[str, Any], int]:
    """The fields and the seed of a request sent as JSON text (the /compose API). Whatever the
    text holds, a RequestError says in one line what is wrong with it; the fields themselves
    are checked by ComposeRequest.from_dict."""
    try:
        data = json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise RequestError(f"the request is not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise RequestError("the request is not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise RequestError(f"the request must be a JSON object, not {_kind(data)}")
    return data, parse_seed(data.get("seed"))


def parse_seed(value: Any) -> int:
    """A sampling seed as a writer or a program may send it: a whole number, also as text or as
    a float with nothing after the point; none is 0."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        shown = repr(value) if isinstance(value, (int, float, str)) else _kind(value)
        raise RequestError(f'"seed" must be a whole number from 0 to {MAX_SEED}, not {shown[:40]}')
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a text", bool: "true or false",
            type(None): "null"}.get(type(value), "a number")


def parse_image_count(value: Any) -> ImageCount:
    if value is None or value == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_IMAGES:
        raise RequestError(f'"image_count" must be "auto" or a whole number from 0 to {MAX_IMAGES}, not {value!r}')
    return value


def _outline(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = printable(value).splitlines()
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = [printable(v) for v in value]
    else:
        raise RequestError('"outline" must be a list of strings or a text')
    # Writers paste outlines with bullets and numbers; the prompt adds its own.
    return tuple(s for s in (item.strip().lstrip("-*•").strip() for item in items) if s)


def _text(data: dict, key: str) -> str:
    value = data.get(key, "")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(value)
    if not isinstance(value, str):
        raise RequestError(f'"{key}" must be a text')
    return printable(value).strip()


def _length(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 50 <= value <= 5000:
        raise RequestError(f'"length" must be a number of words from 50 to 5000, not {value!r}')
    return value


def _flag(data: dict, key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise RequestError(f'"{key}" must be true or false, not {value!r}')
    return value


def _language(value: Any) -> Literal["en", "zh"]:
    if value not in ("en", "zh"):
        raise RequestError(f'"language" must be "en" or "zh", not {value!r}')
    return value
