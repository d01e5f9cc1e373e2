"""The openai: backend. Fast tests drive a tiny in-process HTTP server that misbehaves on purpose;
slow tests start a real llama.cpp server (llama_cpp.server) on the embedded GGUF, loopback only."""
from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from composer.article import Article
from composer.images import load_image
from composer.model.base import ModelError, Prompt, Sampling
from composer.model.registry import load_model
from composer.model.remote import RemoteChatModel, parse_spec
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest

ROOT = Path(__file__).resolve().parent.parent
GREEDY = Sampling(temperature=0, max_new_tokens=24, seed=7)


# --- a scripted server ------------------------------------------------------------------------
class Scripted:
    """A loopback HTTP server whose chat endpoint runs `handler(request_handler, body)`."""

    def __init__(self, handler):
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "scripted"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                handler(self, body)

            def _send(self, code, payload):
                raw = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.bodies: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def chunk(text=None, finish=None):
    delta = {"content": text} if text is not None else {}
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"


def sse_head(h, chunked=False):
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    if chunked:
        h.send_header("Transfer-Encoding", "chunked")
    else:
        h.send_header("Connection", "close")
    h.end_headers()


@pytest.fixture
def scripted():
    servers = []

    def make(handler):
        s = Scripted(handler)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_spec_parsing_and_registry(scripted):
    assert parse_spec("http://h:8000/v1/#m") == ("http://h:8000", "m")
    assert parse_spec("https://h") == ("https://h", None)
    with pytest.raises(ModelError):
        parse_spec("h:8000")
    s = scripted(lambda h, b: None)
    model = load_model(f"openai:{s.url}")
    assert isinstance(model, RemoteChatModel)
    assert model.name == f"openai:scripted@{s.url}" and model.dialect == "generic" and not model.sees_images
    assert load_model(f"openai:{s.url}/v1#other").model == "other"


def test_stream_parses_sse_maps_sampling_and_strips_an_echoed_prefix(scripted):
    def handler(h, body):
        sse_head(h)
        for piece in ["The best", " picture is", " B", "."]:
            h.wfile.write(chunk(piece).encode())
        h.wfile.write(chunk(finish="stop").encode())
        h.wfile.write(b'data: {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}}\n\n')
        h.wfile.write(b"data: [DONE]\n\n")

    s = scripted(handler)
    model = RemoteChatModel(s.url)
    prompt = Prompt.user("Pick one.", system="Be brief.", answer_prefix="The best picture is")
    sampling = Sampling(temperature=0.3, top_p=0.8, top_k=12, repetition_penalty=1.2, max_new_tokens=9, seed=5,
                        stop=("\n", "END"))
    assert "".join(model.stream(prompt, sampling)) == "B."  # leading space dropped, as embedded does
    body = s.bodies[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"].endswith("Begin your answer with: The best picture is")
    # "\n" is applied on our side (after leading blank lines), "END" by the server too
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"], body["stop"]) == (0.3, 0.8, 9, 5, ["END"])
    assert (body["top_k"], body["repeat_penalty"], body["repetition_penalty"]) == (12, 1.2, 1.2)
    assert body["stream"] is True
    assert (model.usage.prefill, model.usage.decode, model.usage.calls) == (11, 4, 1)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_truncated_stream_is_a_model_error_not_a_short_answer(scripted, chunked):
    def handler(h, body):
        sse_head(h, chunked)
        data = chunk("Hello").encode() + chunk(" there").encode()
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        h.wfile.flush()
        h.close_connection = True  # and no [DONE], no finish_reason, no terminating chunk

    s = scripted(handler)
    got = []
    with pytest.raises(ModelError, match="stopped answering mid-reply") as err:
        for delta in RemoteChatModel(s.url, timeout=5).stream(Prompt.user("hi"), GREEDY):
            got.append(delta)
    assert s.url in str(err.value) and "".join(got) == "Hello there"


def test_http_errors_carry_the_servers_message(scripted):
    s = scripted(lambda h, b: h._send(400, {"error": {"message": "max_tokens is too large", "type": "invalid"}}))
    with pytest.raises(ModelError, match=r"HTTP 400: max_tokens is too large"):
        list(RemoteChatModel(s.url).stream(Prompt.user("hi"), GREEDY))


def test_a_silent_server_times_out(scripted):
    s = scripted(lambda h, b: time.sleep(3))
    start = time.monotonic()
    with pytest.raises(ModelError, match="within 0.5 s"):
        list(RemoteChatModel(s.url, timeout=0.5).stream(Prompt.user("hi"), GREEDY))
    assert time.monotonic() - start < 3


def test_no_server_and_images_are_clear_errors(scripted):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    with pytest.raises(ModelError, match=f"no server at http://127.0.0.1:{port}"):
        RemoteChatModel(f"http://127.0.0.1:{port}")
    from PIL import Image

    s = scripted(lambda h, b: None)
    with pytest.raises(ModelError, match="text-only"):
        list(RemoteChatModel(s.url).stream(Prompt.user("look", Image.new("RGB", (4, 4))), GREEDY))


def test_choose_reads_first_token_logprobs(scripted):
    top = [{"token": "B", "logprob": -0.1}, {"token": " A", "logprob": -2.0}, {"token": "A", "logprob": -2.0},
           {"token": "The", "logprob": -3.0}]
    s = scripted(lambda h, b: h._send(200, {
        "choices": [{"message": {"content": "B"}, "logprobs": {"content": [{"token": "B", "logprob": -0.1,
                                                                           "top_logprobs": top}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 1}}))
    model = RemoteChatModel(s.url)
    scores = model.choose(Prompt.user("A or B?", answer_prefix="The answer is"), [" A", " B", " C"])
    assert scores[1] == -0.1 and math.isclose(scores[0], -2.0 + math.log(2)) and scores[2] == float("-inf")
    body = s.bodies[-1]
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)
    assert "Begin your answer" not in body["messages"][-1]["content"]
    assert (model.usage.prefill, model.usage.decode) == (30, 1)


def test_choose_without_logprobs_says_so(scripted):
    s = scripted(lambda h, b: h._send(200, {"choices": [{"message": {"content": "A"}}]}))
    with pytest.raises(ModelError, match="server does not return logprobs; choose needs them"):
        RemoteChatModel(s.url).choose(Prompt.user("A or B?"), [" A", " B"])


# --- a real llama.cpp server ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(wait_s: float = 90.0):
    from composer.model.embedded import embedded_gguf_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"llama_cpp.server did not answer within {wait_s} s")


def stop_server(proc):
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("sse_starlette", reason="llama_cpp.server needs its [server] extras")
    proc, url = start_server()
    yield url
    stop_server(proc)


@pytest.mark.slow
def test_real_server_streams_deterministic_text_and_counts_usage(server):
    model = load_model(f"openai:{server}")
    assert model.name == f"openai:smollm2@{server}"
    prompt = Prompt.user("Write one sentence about cats.", system="You are a helpful assistant.")
    deltas = list(model.stream(prompt, GREEDY))
    assert len(deltas) > 1 and "".join(deltas).strip()
    assert "".join(model.stream(prompt, GREEDY)) == "".join(deltas)
    assert model.usage.calls == 2 and model.usage.decode >= 2 * len(deltas) - 2


@pytest.mark.slow
def test_a_reply_opening_with_a_blank_line_is_not_cut_by_a_newline_stop(scripted):
    def handler(h, body):
        sse_head(h)
        for piece in ["\n\n", "A cat", " asleep\n", "more"]:
            h.wfile.write(chunk(piece).encode())
        h.wfile.write(chunk(finish="stop").encode())
        h.wfile.write(b"data: [DONE]\n\n")

    model = RemoteChatModel(scripted(handler).url)
    assert "".join(model.stream(Prompt.user("Caption?"), Sampling(stop=("\n",)))) == "A cat asleep"


def test_real_server_honours_stop_strings(server):
    model = RemoteChatModel(server)
    prompt = Prompt.user("Write two sentences about cats.")
    full = "".join(model.stream(prompt, Sampling(temperature=0, max_new_tokens=40)))
    word = next(w for w in full.split()[1:] if w.isalpha() and len(w) > 2)
    cut = "".join(model.stream(prompt, Sampling(temperature=0, max_new_tokens=40, stop=(word,))))
    assert word not in cut and full.startswith(cut) and len(cut) < len(full)


@pytest.mark.slow
def test_real_server_choose_scores_letter_options(server):
    model = RemoteChatModel(server)
    prompt = Prompt.user("Which one is a fruit?\nA. apple\nB. car\nC. stone\nAnswer with the letter.",
                         answer_prefix="The answer is")
    scores = model.choose(prompt, [" A", " B", " C"])
    assert len(scores) == 3 and all(math.isfinite(s) for s in scores)
    assert model.usage.prefill > 0 and model.usage.decode == 1 and model.usage.calls == 1


@pytest.mark.slow
def test_compose_end_to_end_through_a_real_server(server):
    model = RemoteChatModel(server)
    uploads = [load_image(ROOT / "assets/library/cat.jpg"), load_image(ROOT / "assets/library/coffee.jpg")]
    request = ComposeRequest("A morning café with a cat", outline=("The café", "The cat"), length=120, image_count=2)
    events = list(compose(request, model, uploads=uploads, seed=3))
    assert events[-1].kind == "done"
    article = events[-1].data["article"]
    assert isinstance(article, Article) and article.metadata["model"] == model.name
    assert any(e.kind == "text" for e in events) and events[-1].data["usage"]["calls"] > 0


@pytest.mark.slow
def test_a_killed_server_is_a_model_error_naming_it():
    pytest.importorskip("sse_starlette", reason="llama_cpp.server needs its [server] extras")
    proc, url = start_server()
    try:
        model = RemoteChatModel(url, timeout=10)
        long = Prompt.user("Write a very long story about a dragon, with many chapters.")
        stream = model.stream(long, Sampling(temperature=0.8, max_new_tokens=1500, seed=1))
        assert next(stream)  # the reply has begun
        stop_server(proc)
        start = time.monotonic()
        with pytest.raises(ModelError, match="stopped answering mid-reply"):
            for _ in stream:
                pass
        assert time.monotonic() - start < 10
        with pytest.raises(ModelError, match=f"no server at {url}"):
            list(model.stream(Prompt.user("hi"), GREEDY))
    finally:
        if proc.poll() is None:
            stop_server(proc)
