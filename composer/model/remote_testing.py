"""Servers for tests and benchmarks of the openai: backend, loopback only.

`ScriptedServer`: a tiny OpenAI-compatible HTTP server whose chat endpoint runs a handler, for
answers and failures on purpose. `LlamaServer`: a real `python -m llama_cpp.server` on the
embedded GGUF (SmolLM2-135M), one thread by default so that two fit beside other work.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[BaseHTTPRequestHandler, dict], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


# --- a scripted server -----------------------------------------------------------------------
def send_json(h: BaseHTTPRequestHandler, code: int, payload: object, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(payload).encode()
    h.send_response(code)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(raw)))
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.end_headers()
    h.wfile.write(raw)


def sse_head(h: BaseHTTPRequestHandler, chunked: bool = False) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    if chunked:
        h.send_header("Transfer-Encoding", "chunked")
    else:
        h.send_header("Connection", "close")
    h.end_headers()


def sse_chunk(text: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    event = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return ("data: " + json.dumps(event) + "\n\n").encode()


def sse_reply(h: BaseHTTPRequestHandler, pieces: Iterable[str], usage: dict | None = None) -> None:
    """A whole, well-formed streamed reply."""
    sse_head(h)
    for piece in pieces:
        h.wfile.write(sse_chunk(piece))
    h.wfile.write(sse_chunk(finish="stop"))
    if usage:
        h.wfile.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
    h.wfile.write(b"data: [DONE]\n\n")


def logprobs_reply(h: BaseHTTPRequestHandler, top: Sequence[tuple[str, float]], usage: dict | None = None,
                   echo: Sequence[str] = ()) -> None:
    """A non-streamed reply with top_logprobs, as `choose` asks for: the `echo` tokens (a model
    repeating its answer prefix), then one token whose alternatives are `top`."""
    content = [{"token": e, "logprob": -0.01, "top_logprobs": [{"token": e, "logprob": -0.01}]} for e in echo]
    content.append({"token": top[0][0], "logprob": top[0][1],
                    "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]})
    choice = {"message": {"content": "".join(echo) + top[0][0]}, "logprobs": {"content": content}}
    send_json(h, 200, {"choices": [choice],
                       "usage": usage or {"prompt_tokens": 1, "completion_tokens": len(content)}})


class LoopbackHTTP:
    """An HTTP/1.1 server on a loopback port, serving from a thread until closed: the base of the
    scripted chat server below and of the image engine in composer.imagegen.testing. A GET goes
    to `on_get(h)`, a POST with its body to `on_post(h, raw)`; both answer 404 unless overridden.
    Subclasses set their own attributes before calling this constructor (it starts serving)."""

    def __init__(self, port: int = 0):
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.on_get(self)

            def do_POST(self):
                outer.on_post(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        self.lock = threading.Lock()
        self.closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def on_get(self, h: BaseHTTPRequestHandler) -> None:
        send_json(h, 404, {"error": {"message": f"no route {h.path}"}})

    def on_post(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        send_json(h, 404, {"error": {"message": f"no route {h.path}"}})

    def close(self) -> None:
        """Stop serving (once: a server that dies mid-test closes itself from its own thread)."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ScriptedServer(LoopbackHTTP):
    """POST runs `handler(request_handler, body)`; GET /v1/models lists `models`. Every request
    body and Authorization header is kept, in order, for the test to inspect."""

    def __init__(self, handler: Handler, models: Sequence[str] = ("scripted",)):
        self.handler, self.models = handler, tuple(models)
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.gets = 0
        super().__init__()

    def on_get(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.gets += 1
        send_json(h, 200, {"object": "list", "data": [{"id": m} for m in self.models]})

    def on_post(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        body = json.loads(raw)
        with self.lock:
            self.bodies.append(body)
            self.auth.append(h.headers.get("Authorization"))
        self.handler(h, body)


# --- a real llama.cpp server -----------------------------------------------------------------
class LlamaServer:
    """`python -m llama_cpp.server` on the embedded GGUF, served as model `smollm2`."""

    def __init__(self, n_threads: int = 1, n_ctx: int = 2048, wait_s: float = 120.0, alias: str = "smollm2",
                 interrupt_requests: bool = False):
        """`interrupt_requests`: llama.cpp's own default (True) ends a streaming reply early when
        another request arrives; a server for several writers must not."""
        from composer.model.embedded import embedded_gguf_path

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()), "--model_alias", alias,
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(n_threads),
             "--n_threads_batch", str(n_threads), "--interrupt_requests", str(interrupt_requests)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {wait_s} s")

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Kill it (as a crash would) and wait for it to be gone."""
        if self.running:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
