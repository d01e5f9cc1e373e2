"""`openai:URL[,URL...][#MODEL][?options]`: the app as a client of existing serving engines
(LMDeploy for XComposer2, vLLM, llama.cpp server) through the OpenAI-compatible HTTP API.

The parts: remote_spec (the spec string, dialect by model id), remote_content (a Prompt as
chat messages, photos as JPEG data URLs), remote_pool (several servers, health, retries),
remote_http (one request). This module is the ChatModel: stream, complete, choose.
Safe to call from many threads at once: that is how several servers get used.
"""
from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from composer.model.base import ChatModelBase, ModelError, Prompt, Sampling, TokenUsage
from composer.model.remote_content import to_messages
from composer.model.remote_http import as_text, message_of
from composer.model.remote_pool import Lease, RetryPolicy, Server, ServerPool, api_key_from_env
from composer.model.remote_spec import RemoteSpec, parse_spec, resolve
from composer.model.sampling import StopStringFilter

DEFAULT_TIMEOUT = 120.0   # seconds per socket read, not per reply: a long reply keeps streaming
DEFAULT_DEADLINE = 900.0  # seconds for a whole request, however steadily it streams
TOP_LOGPROBS = 20         # the most OpenAI's API allows; vLLM, LMDeploy and llama.cpp accept it
MAX_PARALLEL = 8          # requests one complete() call has in flight at once
MAX_EVENT_BYTES = 4 << 20   # one server-sent event line; a token's delta is a few bytes
# A server that ignores max_tokens is cut by the client: a chunk carries one token or more, and
# a token is rarely more than a few characters, so past either count the budget is spent.
CHARS_PER_TOKEN = 64


class RemoteChatModel(ChatModelBase):
    # Calls may run concurrently (the servers queue and batch them; the pool spreads them): an
    # app must not serialise this model behind one lock, or a second server would sit idle.
    thread_safe = True

    def __init__(self, spec: str | RemoteSpec, model: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 api_key: str | None = None, deadline: float = DEFAULT_DEADLINE,
                 retry: RetryPolicy = RetryPolicy()):
        self.spec = spec if isinstance(spec, RemoteSpec) else parse_spec(spec)
        self.timeout = timeout
        self.deadline = deadline
        if api_key is None:
            api_key = api_key_from_env()
        self.pool = ServerPool(self.spec.urls, retry, api_key)
        self.usage = TokenUsage()
        self._usage_lock = threading.Lock()
        self.model = model or self.spec.model or self._first_model()
        speech = resolve(self.spec, self.model)
        self.dialect, self.sees_images, self.parts = speech.dialect, speech.sees_images, speech.parts
        self.name = f"openai:{self.model}@{','.join(self.spec.urls)}"

    # --- requests ------------------------------------------------------------------------------
    def _first_model(self) -> str:
        data = self._json("GET", "/v1/models", first=True).get("data") or []
        if not data or not data[0].get("id"):
            raise ModelError(f"the server at {self.spec.urls[0]} lists no models; name one: openai:URL#MODEL")
        return data[0]["id"]

    def _json(self, method: str, path: str, body: dict | None = None, first: bool = False) -> dict:
        return self.pool.request_json(method, path, body, self.timeout, first=first)

    def _messages(self, prompt: Prompt, with_prefix: bool = True) -> list[dict[str, Any]]:
        if prompt.images and not self.sees_images:
            raise ModelError(f"{self.name} is text-only here; this prompt has images "
                             "(add ?images=on to the spec if the served model sees images)")
        # A prefilled assistant fragment (the answer prefix) is not portable across servers: some
        # continue it, some start a new turn after it. Instead the last user message asks for it,
        # and stream() strips it if the model echoes it.
        note = f"\n\nBegin your answer with: {prompt.answer_prefix}" if with_prefix and prompt.answer_prefix else ""
        return to_messages(prompt, self.parts, note)

    def _body(self, prompt: Prompt, sampling: Sampling) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self._messages(prompt),
            "temperature": max(sampling.temperature, 0.0),
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_new_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            # Not in OpenAI's API but accepted by the engines this backend is for: vLLM and
            # LMDeploy read top_k and repetition_penalty, llama.cpp's servers top_k and repeat_penalty.
            "top_k": sampling.top_k,
            "repetition_penalty": sampling.repetition_penalty,
            "repeat_penalty": sampling.repetition_penalty,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        server_stops = [s for s in sampling.stop if _server_side(s, prompt.answer_prefix)]
        if server_stops:
            body["stop"] = server_stops
        return body

    def _count(self, prefill: int = 0, decode: int = 0, calls: int = 0) -> None:
        with self._usage_lock:
            self.usage.prefill += prefill
            self.usage.decode += decode
            self.usage.calls += calls

    # --- ChatModel -------------------------------------------------------------------------------
    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        body = self._body(prompt, sampling)
        self._count(calls=1)
        attempts = self.pool.policy.attempts
        for attempt in range(1, attempts + 1):
            reply = _Reply()
            try:
                yield from self._stream_once(body, prompt, sampling, reply)
                return
            except StreamCut as cut:
                # Broken off before its first token: nothing reached the writer, so the
                # request may go to another server. Once a token has, never.
                if reply.chunks or attempt == attempts:
                    raise
                self.pool.mark_down(cut.server, "stopped answering before the first token")

    def _stream_once(self, body: dict, prompt: Prompt, sampling: Sampling, reply: _Reply) -> Iterator[str]:
        # The server honours `stop`; filtering here as well keeps a server that does not from
        # leaking the stop string, and applies the stops it must not see (see _server_side).
        stops = StopStringFilter(sampling.stop)
        echo = _PrefixEcho(prompt.answer_prefix)
        reported = False
        chars, budget, spent = 0, max(1, sampling.max_new_tokens), False
        with closing(self._events("/v1/chat/completions", body)) as events:
            for event in events:
                usage = event.get("usage")
                if isinstance(usage, dict):
                    self._count(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))
                    reported = True
                for choice in _list(event.get("choices")):
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    delta = delta.get("content") if isinstance(delta, dict) else None
                    if not delta or not isinstance(delta, str):
                        continue
                    reply.chunks += 1
                    chars += len(delta)
                    if reply.chunks > budget or chars > budget * CHARS_PER_TOKEN:
                        spent = True  # past the token budget: the server ignores max_tokens
                        break
                    text = stops.feed(echo.feed(delta))
                    if text:
                        yield text
                    if stops.stopped:
                        break
                if stops.stopped or spent:
                    break  # a spent budget ends the reply as a server's "length" finish does
        if not reported:
            # Servers that ignore stream_options (llama.cpp's Python server) report nothing while
            # streaming; they send one chunk per generated token, so the chunks are the count.
            # The prompt's tokens stay uncounted: the client has no tokenizer.
            self._count(decode=reply.chunks)
        tail = "" if stops.stopped else stops.feed(echo.flush()) + stops.flush()
        if tail:
            yield tail

    def _events(self, path: str, body: dict) -> Generator[dict, None, None]:
        """Server-sent events: `data: {...}` lines until `data: [DONE]`. A stream that ends
        without [DONE] or a finish_reason was cut: the server died or dropped the connection.
        Nothing is retried once the response is open: a token may already be on the page."""
        finished = False
        give_up = time.monotonic() + self.deadline
        lease: Lease = self.pool.open("POST", path, body, self.timeout)
        base = lease.server.base
        try:
            while True:
                try:
                    line = lease.response.readline(MAX_EVENT_BYTES + 1)
                except TimeoutError:
                    raise ModelError(f"the server at {base} sent nothing for {self.timeout:g} s mid-reply") from None
                except (ConnectionError, http.client.HTTPException, OSError):
                    raise StreamCut(lease.server) from None
                if not line:
                    break
                if len(line) > MAX_EVENT_BYTES:
                    raise ModelError(f"the server at {base} sent an event longer than {MAX_EVENT_BYTES >> 20} MiB")
                if time.monotonic() > give_up:
                    raise ModelError(f"the server at {base} did not finish within {self.deadline:g} s")
                text = line.decode("utf-8", errors="replace").strip()
                if not text.startswith("data:"):
                    continue  # blank separators, comments (": ping"), event names
                data = text[len("data:"):].strip()
                if data == "[DONE]":
                    if not finished:
                        # llama.cpp's server ends a reply this way when another request arrives
                        # (unless started with --interrupt_requests False): a short answer, silently.
                        raise StreamCut(lease.server, "ended the reply early ([DONE] before any finish_reason)")
                    return
                try:
                    event = as_text(json.loads(data))
                except (ValueError, RecursionError):
                    event = None
                if not isinstance(event, dict):
                    raise ModelError(f"the server at {base} sent a malformed event: {data[:80]!r}")
                if "error" in event:
                    raise ModelError(f"the server at {base} failed mid-reply: {message_of(event)}")
                if any(isinstance(c, dict) and c.get("finish_reason") for c in _list(event.get("choices"))):
                    finished = True
                yield event
        finally:
            lease.close()
        if not finished:
            raise StreamCut(lease.server)

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        # Sent at once: a serving engine batches concurrent requests, and the pool spreads them
        # over the servers. Each has its own seed, so the answers do not depend on the order.
        if len(prompts) < 2:
            return ["".join(self.stream(p, sampling)) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(len(prompts), MAX_PARALLEL)) as workers:
            return list(workers.map(lambda p: "".join(self.stream(p, sampling)), prompts))

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Each option's score is the log-probability of its FIRST token as the first token of
        the answer, read from the server's top_logprobs (an approximation: the API gives no
        log-likelihood of a given continuation; exact for one-token options like " A"/" B").
        An option outside the top 20 scores -inf. A chat API cannot prefill the answer prefix
        (最合适的图是, "The best picture is"), so the model is asked to begin with it, as in
        stream(), and given the tokens to write it: the scores are read at the first token after
        the echoed prefix, or at the first token of a reply that does not echo it."""
        prefix = prompt.answer_prefix.strip()
        body = {
            "model": self.model,
            "messages": self._messages(prompt),
            "max_tokens": 1 + min(2 * len(prefix), 32),  # a token per character at most, roughly
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
            "stream": False,
        }
        reply = self._json("POST", "/v1/chat/completions", body)
        usage = reply.get("usage") or {}
        self._count(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), calls=1)
        choices = reply.get("choices") or []
        content = ((choices[0].get("logprobs") or {}).get("content") if choices else None) or []
        if not content or not content[0].get("top_logprobs"):
            raise ModelError("server does not return logprobs; choose needs them")
        at = _answer_start([str(t.get("token", "")) for t in content], prefix)
        if at >= len(content) or not content[at].get("top_logprobs"):
            return [float("-inf")] * len(options)  # the reply ended with the prefix: no answer to score
        top = [(str(t.get("token", "")).strip(), float(t["logprob"])) for t in content[at]["top_logprobs"]]
        return [_first_token_score(option, top) for option in options]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _answer_start(tokens: Sequence[str], prefix: str) -> int:
    """Index of the reply's first token after an echo of `prefix` (its first non-blank token
    when it does not echo it; len(tokens) when the reply is the echo and nothing more). A token that runs past the
    prefix's end (rare: tokenizers keep a letter apart) is where the answer starts."""
    text, first = "", None
    for i, token in enumerate(tokens):
        text += token
        head = text.lstrip()
        if first is None and head:
            first = i  # leading blank tokens are not the answer
        if prefix and head.startswith(prefix):
            if head != prefix:
                return i
            return next((j for j in range(i + 1, len(tokens)) if tokens[j].strip()), len(tokens))
        if not prefix.startswith(head):
            return first or 0  # the reply went its own way from the start
    return len(tokens) if prefix else (first or 0)


class StreamCut(ModelError):
    """A streamed reply that ended without its end: the server died or dropped the connection."""

    def __init__(self, server: Server, what: str = "stopped answering mid-reply"):
        super().__init__(f"the server at {server.base} {what}")
        self.server = server


@dataclass
class _Reply:
    chunks: int = 0  # content deltas received from the server so far


def _server_side(stop: str, answer_prefix: str) -> bool:
    """Which stops the server may apply. Not a whitespace stop: a server stops on it even before
    the first word, and a reply often opens with a blank line. Not a stop found in the answer
    prefix: the model, asked to begin with the prefix, writes it first (the xcomposer caption
    prefix 标题是" opens the quote that ends the caption). Both are applied here instead."""
    return bool(stop.strip()) and stop not in answer_prefix


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
    to begin with it); passes everything through unchanged once the reply diverges. A reply
    that repeats only the prefix's closing punctuation (a model that opens its caption with the
    quote 标题是" ends in) loses that too: the prefilled prefix would have supplied it."""

    def __init__(self, prefix: str):
        self.prefix = prefix.strip()
        core = self.prefix.rstrip("\"'“”‘’「」『』:：,，")
        self.tail = self.prefix[len(core):]
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
        elif self.tail and head.startswith(self.tail):
            out = head[len(self.tail):]
        return out

    def flush(self) -> str:
        # A reply that ended while still looking like the prefix was only (part of) the echo.
        self.done, self.buffer = True, ""
        return ""
