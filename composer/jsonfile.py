"""Reading a JSON file a user gave (a request, an article): one line saying what is wrong with
it, never a traceback, whatever the file holds (unreadable, not UTF-8, not JSON, nested 100,000
deep)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JSONFileError(ValueError):
    """The file cannot be read as JSON; the message names it and says why, in one line."""


def read_json(path: str | Path, what: str) -> Any:
    """The parsed contents of `path`; `what` names the file in messages ("request file")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JSONFileError(f"{path}: cannot read {what} ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError:
        raise JSONFileError(f"{path}: not valid JSON (nested too deeply)") from None
