"""One HTTP request to one server, its failures sorted by what the caller can do about them.

Standard library only (urllib): the `openai` package is not needed for three endpoints.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.error
import urllib.request
from typing import Any

MAX_ERROR_BYTES = 64 * 1024  # an error body is a message: read no more than this of it
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def as_text(value: Any) -> Any:
    """A server's parsed JSON with every string made text: a JSON escape can hold half a UTF-16
    pair ("\\ud800"), which json decodes to a lone surrogate that no file, terminal or page can
    take. Each one becomes U+FFFD (a whole escaped pair is already one character)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {as_text(k): as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    return value


class Unreachable(Exception):
    """No answer at all: refused, reset or dropped before a status line. Safe to send elsewhere."""


class Status(Exception):
    """The server answered with an HTTP error."""

    def __init__(self, code: int, message: str, retry_after: float | None = None):
        super().__init__(f"HTTP {code}: {message}")
        self.code, self.message, self.retry_after = code, message, retry_after


class Silent(Exception):
    """Connected, but nothing came back within the read timeout."""


def open_request(base: str, method: str, path: str, body: dict | None, timeout: float,
                 api_key: str | None) -> http.client.HTTPResponse:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise Status(exc.code, error_message(exc), _retry_after(exc.headers.get("Retry-After"))) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise Silent() from None
        raise Unreachable(_reason(exc.reason)) from None
    except TimeoutError:
        raise Silent() from None
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise Unreachable(_reason(exc)) from None


def _reason(exc: object) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed the connection without answering"
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from these engines; our own back-off applies


def error_message(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(MAX_ERROR_BYTES)
    except Exception:  # the body is a courtesy; the status code is the message
        raw = b""
    try:
        return message_of(json.loads(raw[:MAX_ERROR_BYTES]))
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", errors="replace").strip()
        return " ".join(text.split())[:200] or exc.reason or "no message"


def message_of(payload: Any, depth: int = 0) -> str:
    """OpenAI: {"error": {"message"}}; FastAPI (llama.cpp server): {"detail": ...}; vLLM older: {"message"}."""
    if depth > 8:
        return "(nested too deeply)"
    payload = as_text(payload) if depth == 0 else payload
    if isinstance(payload, dict):
        for key in ("error", "detail", "message"):
            if key in payload:
                return message_of(payload[key], depth + 1)
    if isinstance(payload, list) and payload:
        return "; ".join(message_of(p, depth + 1) for p in payload[:3])
    return " ".join(str(payload).split())[:300]
