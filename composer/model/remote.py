"""`openai:BASE_URL[#MODEL]`: the app as a client of an existing serving engine (vLLM, LMDeploy,
llama.cpp server) through the OpenAI-compatible HTTP API.

Standard library only (urllib): the `openai` package is not needed for three endpoints. Text
only: a prompt with images is refused rather than silently sent without them.
"""
from __future__ import annotations

import http.client
import json
import math
import os
import socket
import urllib.error
import urllib.request
from typing import Any, Iterator, Sequence

from composer.model.base import ChatModelBase, ModelError, Prompt, Sampling, TokenUsage
from composer.model.sampling import StopStringFilter

DEFAULT_TIMEOUT = 120.0  # seconds per socket read, not per reply: a long reply keeps streaming
TOP_LOGPROBS = 20  # the most OpenAI's API allows; vLLM and llama.cpp server accept it too


def parse_spec(arg: str) -> tuple[str, str | None]:
    """'http://host:8000[/v1][#model]' → ('http://host:8000', model or None)."""
    base, _, model = arg.partition("#")
    base = base.strip().rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    if not base.startswith(("http://", "https://")):
        raise ModelError(f"openai backend: {arg!r} is not a URL; expected openai:http://HOST:PORT[#MODEL]")
    return base, (model.strip() or None)


class RemoteChatModel(ChatModelBase):
    dialect = "generic"
    sees_images = False

    def __init__(self, base_url: str, model: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 api_key: str | None = None):
        self.base, spec_model = parse_spec(base_url)
        self.timeout = timeout
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.usage = TokenUsage()
        self.model = model or spec_model or self._first_model()
        self.name = f"openai:{self.model}@{self.base}"

    # --- HTTP ----------------------------------------------------------------------------------
    def _open(self, method: str, path: str, body: dict | None = None):
        url = self.base + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise ModelError(f"the server at {self.base} answered HTTP {exc.code}: {_error_message(exc)}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise ModelError(f"the server at {self.base} did not answer within {self.timeout:g} s") from None
            raise ModelError(f"no server at {self.base} ({exc.reason})") from None
        except (TimeoutError, socket.timeout):
            raise ModelError(f"the server at {self.base} did not answer within {self.timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise ModelError(f"no server at {self.base} ({exc})") from None

    def _json(self, method: str, path: str, body: dict | None = None) -> dict:
        with self._open(method, path, body) as response:
            try:
                raw = response.read()
            except (TimeoutError, socket.timeout):
                raise ModelError(f"the server at {self.base} did not answer within {self.timeout:g} s") from None
            except (ConnectionError, http.client.HTTPException):
                raise ModelError(f"the server at {self.base} stopped answering mid-reply") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ModelError(f"the server at {self.base} sent something that is not JSON: {raw[:80]!r}") from None

    def _first_model(self) -> str:
        data = self._json("GET", "/v1/models").get("data") or []
        if not data or not data[0].get("id"):
            raise ModelError(f"the server at {self.base} lists no models; name one: openai:{self.base}#MODEL")
        return data[0]["id"]

    # --- requests ------------------------------------------------------------------------------
    def _messages(self, prompt: Prompt, with_prefix: bool = True) -> list[dict[str, str]]:
        if prompt.images:
            raise ModelError(f"the remote backend ({self.name}) is text-only; this prompt has images")
        messages = [{"role": t.role, "content": t.text} for t in prompt.turns]
        # A prefilled assistant fragment (the answer prefix) is not portable across servers: some
        # continue it, some start a new turn after it. Instead the last user message asks for it,
        # and stream() strips it if the model echoes it.
        if with_prefix and prompt.answer_prefix:
            users = [m for m in messages if m["role"] == "user"]
            note = f"Begin your answer with: {prompt.answer_prefix}"
            if users:
                users[-1]["content"] = f"{users[-1]['content']}\n\n{note}"
            else:
                messages.append({"role": "user", "content": note})
        return messages

    def _body(self, prompt: Prompt, sampling: Sampling) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self._messages(prompt),
            "temperature": max(sampling.temperature, 0.0),
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_new_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            # Not in OpenAI's API but accepted by the engines this backend is for: vLLM reads
            # top_k and repetition_penalty, llama.cpp's servers read top_k and repeat_penalty.
            "top_k": sampling.top_k,
            "repetition_penalty": sampling.repetition_penalty,
            "repeat_penalty": sampling.repetition_penalty,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        # A whitespace stop ("\n") is applied here, not by the server: a server stops on it even
        # before the first word, and a model's reply often opens with a blank line. The local
        # filter skips leading whitespace first, as the embedded backend does.
        server_stops = [s for s in sampling.stop if s.strip()]
        if server_stops:
            body["stop"] = server_stops
        return body

    # --- ChatModel -------------------------------------------------------------------------------
    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        body = self._body(prompt, sampling)
        self.usage.calls += 1
        chunks = 0
        reported = False
        # The server honours `stop`; filtering here as well keeps a server that does not from
        # leaking the stop string.
        stops = StopStringFilter(sampling.stop)
        echo = _PrefixEcho(prompt.answer_prefix)
        for event in self._events("/v1/chat/completions", body):
            usage = event.get("usage")
            if usage:
                self.usage.prefill += int(usage.get("prompt_tokens") or 0)
                self.usage.decode += int(usage.get("completion_tokens") or 0)
                reported = True
            for choice in event.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content")
                if not delta:
                    continue
                chunks += 1
                text = stops.feed(echo.feed(delta))
                if text:
                    yield text
                if stops.stopped:
                    break
            if stops.stopped:
                break
        if not reported:
            # Servers that ignore stream_options (llama.cpp's Python server) report nothing while
            # streaming; they send one chunk per generated token, so the chunks are the count.
            # The prompt's tokens stay uncounted: the client has no tokenizer.
            self.usage.decode += chunks
        tail = "" if stops.stopped else stops.feed(echo.flush()) + stops.flush()
        if tail:
            yield tail

    def _events(self, path: str, body: dict) -> Iterator[dict]:
        """Server-sent events: `data: {...}` lines until `data: [DONE]`. A stream that ends
        without [DONE] or a finish_reason was cut: the server died or dropped the connection."""
        finished = False
        response = self._open("POST", path, body)
        try:
            while True:
                try:
                    line = response.readline()
                except (TimeoutError, socket.timeout):
                    raise ModelError(f"the server at {self.base} sent nothing for {self.timeout:g} s mid-reply") from None
                except (ConnectionError, http.client.HTTPException, OSError):
                    raise ModelError(f"the server at {self.base} stopped answering mid-reply") from None
                if not line:
                    break
                line = line.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, comments (": ping"), event names
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise ModelError(f"the server at {self.base} sent a malformed event: {data[:80]!r}") from None
                if "error" in event:
                    raise ModelError(f"the server at {self.base} failed mid-reply: {_message_of(event)}")
                if any(c.get("finish_reason") for c in event.get("choices") or []):
                    finished = True
                yield event
        finally:
            response.close()
        if not finished:
            raise ModelError(f"the server at {self.base} stopped answering mid-reply")

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        # Sequential: a serving engine batches concurrent requests on its side; the planner's
        # prompts are few and short, so parallel requests would buy little.
        return ["".join(self.stream(p, sampling)) for p in prompts]

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Each option's score is the log-probability of its FIRST token as the reply's first
        token, read from the server's top_logprobs (an approximation: the API gives no
        log-likelihood of a given continuation; exact for one-token options like " A"/" B").
        An option outside the top 20 scores -inf. The answer prefix is left out: with one token
        to spend, the reply must start with the option itself."""
        body = {
            "model": self.model,
            "messages": self._messages(prompt, with_prefix=False),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
            "stream": False,
        }
        reply = self._json("POST", "/v1/chat/completions", body)
        self.usage.calls += 1
        usage = reply.get("usage") or {}
        self.usage.prefill += int(usage.get("prompt_tokens") or 0)
        self.usage.decode += int(usage.get("completion_tokens") or 0)
        choices = reply.get("choices") or []
        content = ((choices[0].get("logprobs") or {}).get("content") if choices else None) or []
        if not content or not content[0].get("top_logprobs"):
            raise ModelError("server does not return logprobs; choose needs them")
        top = [(str(t.get("token", "")).strip(), float(t["logprob"])) for t in content[0]["top_logprobs"]]
        return [_first_token_score(option, top) for option in options]


def _first_token_score(option: str, top: list[tuple[str, float]]) -> float:
    want = option.strip()
    if not want:
        return float("-inf")
    exact = [lp for tok, lp in top if tok == want]  # "A" and " A" are both the option " A"
    if exact:
        m = max(exact)
        return m + math.log(sum(math.exp(lp - m) for lp in exact))
    prefixes = [(len(tok), lp) for tok, lp in top if tok and want.startswith(tok)]
    return max(prefixes)[1] if prefixes else float("-inf")


class _PrefixEcho:
    """Drops the answer prefix from the start of a reply when the model repeats it (it was asked
    to begin with it); passes everything through unchanged once the reply diverges."""

    def __init__(self, prefix: str):
        self.prefix = prefix.strip()
        self.buffer = ""
        self.done = not self.prefix

    def feed(self, text: str) -> str:
        if self.done:
            return text
        self.buffer += text
        head = self.buffer.lstrip()
        if len(head) < len(self.prefix) and self.prefix.startswith(head):
            return ""  # could still be the echo
        self.done = True
        out, self.buffer = self.buffer, ""
        if head.startswith(self.prefix):
            out = head[len(self.prefix):]
            if self.prefix[-1:].isalnum():
                out = out.lstrip(" ")
        return out

    def flush(self) -> str:
        # A reply that ended while still looking like the prefix was only (part of) the echo.
        self.done, self.buffer = True, ""
        return ""


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read()
    except Exception:  # the body is a courtesy; the status code is the message
        raw = b""
    try:
        return _message_of(json.loads(raw))
    except ValueError:
        text = raw.decode("utf-8", errors="replace").strip()
        return " ".join(text.split())[:200] or exc.reason or "no message"


def _message_of(payload: Any) -> str:
    """OpenAI: {"error": {"message"}}; FastAPI (llama.cpp server): {"detail": ...}; vLLM older: {"message"}."""
    if isinstance(payload, dict):
        for key in ("error", "detail", "message"):
            if key in payload:
                return _message_of(payload[key])
    if isinstance(payload, list) and payload:
        return "; ".join(_message_of(p) for p in payload[:3])
    return " ".join(str(payload).split())[:300]
