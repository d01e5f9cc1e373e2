"""The openai: backend. Fast tests drive a tiny in-process HTTP server that misbehaves on purpose;
slow tests start real llama.cpp servers (llama_cpp.server) on the embedded GGUF, loopback only,
one thread each, at most two at a time."""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from composer.article import Article
from composer.images import load_image
from composer.model.base import ModelError, Prompt, Sampling
from composer.model.registry import load_model
from composer.model.remote import RemoteChatModel
from composer.model.remote_pool import RetryPolicy
from composer.model.remote_spec import RemoteSpec, parse_spec
from composer.model.remote_testing import (
    LlamaServer,
    closed_url,
    logprobs_reply,
    send_json,
    sse_chunk,
    sse_head,
    sse_reply,
)
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest

ROOT = Path(__file__).resolve().parent.parent
GREEDY = Sampling(temperature=0, max_new_tokens=24, seed=7)
QUICK = RetryPolicy(attempts=3, total_s=5, base_s=0.01, cap_s=0.05)


# --- the spec ------------------------------------------------------------------------------------
def test_spec_parsing():
    assert parse_spec("http://h:8000/v1/#m") == RemoteSpec(("http://h:8000",), "m")
    assert parse_spec("https://h") == RemoteSpec(("https://h",))
    assert parse_spec("http://a:1, http://b:2/v1#internlm/internlm-xcomposer2-7b?images=off&dialect=generic") == \
        RemoteSpec(("http://a:1", "http://b:2"), "internlm/internlm-xcomposer2-7b", False, "generic")
    assert parse_spec("http://a:1?dialect=xcomposer&images=on#m") == RemoteSpec(("http://a:1",), "m", True, "xcomposer")
    assert parse_spec("http://a:1?parts=interleaved").parts == "interleaved"
    for bad, message in [("h:8000", "is not a URL"), ("http://a,h:1", "is not a URL"), ("", "names no server"),
                         ("http://a,http://a/v1", "names a server twice"),
                         ("http://a?image=on", "unknown option 'image'"),
                         ("http://a?images=yes", "images must be on or off"), ("http://a?dialect", "dialect must be")]:
        with pytest.raises(ModelError, match=message):
            parse_spec(bad)


@pytest.mark.parametrize("spec, dialect, sees_images, parts", [
    ("#internlm/internlm-xcomposer2-7b", "xcomposer", True, "lmdeploy"),
    ("#InternLM-XComposer2-7B-AWQ", "xcomposer", True, "lmdeploy"),
    ("#internlm-xcomposer2-7b?images=off", "xcomposer", False, "lmdeploy"),
    ("#internlm-xcomposer2-7b?dialect=generic", "generic", True, "interleaved"),
    ("#qwen2-vl?images=on", "generic", True, "interleaved"),
    ("#my-ixc2?dialect=xcomposer", "xcomposer", False, "lmdeploy"),
    ("", "generic", False, "interleaved"),  # the server's first model: "scripted"
])
def test_dialect_and_images_follow_the_model_id_unless_overridden(scripted, spec, dialect, sees_images, parts):
    s = scripted(lambda h, b: None)
    model = load_model(f"openai:{s.url}{spec}")
    assert isinstance(model, RemoteChatModel)
    assert (model.dialect, model.sees_images, model.parts) == (dialect, sees_images, parts)


def test_registry_names_the_model_and_its_servers(scripted):
    a, b = scripted(lambda h, b: None, models=("first",)), scripted(lambda h, b: None, models=("second",))
    model = load_model(f"openai:{a.url},{b.url}")
    assert model.name == f"openai:first@{a.url},{b.url}" and model.dialect == "generic" and not model.sees_images
    assert load_model(f"openai:{a.url}/v1#other").model == "other"


# --- one server, misbehaving on purpose -------------------------------------------------------------
def test_stream_parses_sse_maps_sampling_and_strips_an_echoed_prefix(scripted):
    s = scripted(lambda h, body: sse_reply(h, ["The best", " picture is", " B", "."],
                                           usage={"prompt_tokens": 11, "completion_tokens": 4}))
    model = RemoteChatModel(s.url)
    prompt = Prompt.user("Pick one.", system="Be brief.", answer_prefix="The best picture is")
    sampling = Sampling(temperature=0.3, top_p=0.8, top_k=12, repetition_penalty=1.2, max_new_tokens=9, seed=5,
                        stop=("\n", "END"))
    assert "".join(model.stream(prompt, sampling)) == "B."  # leading space dropped, as embedded does
    body = s.bodies[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"].endswith("Begin your answer with: The best picture is")
    # "\n" is applied on our side (after leading blank lines), "END" by the server too
    sent = (body["temperature"], body["top_p"], body["max_tokens"], body["seed"], body["stop"])
    assert sent == (0.3, 0.8, 9, 5, ["END"])
    assert (body["top_k"], body["repeat_penalty"], body["repetition_penalty"]) == (12, 1.2, 1.2)
    assert body["stream"] is True
    assert (model.usage.prefill, model.usage.decode, model.usage.calls) == (11, 4, 1)


def test_a_stop_inside_the_answer_prefix_is_applied_here_not_by_the_server(scripted):
    """The xcomposer caption prefix 标题是" opens the quote that ends the caption. A model asked
    to begin with the prefix writes that quote first; sent to the server as a stop, it would end
    the reply before the caption (the server stops on the echo)."""
    answers = iter(['标题是"窗台上的猫"。', '"一杯浓缩咖啡"', '清晨的咖啡馆"'])

    def handler(h, body):
        text = next(answers)
        for stop in body.get("stop", []):  # as a real server does
            text = text.split(stop, 1)[0]
        sse_reply(h, [text[:2], text[2:]])

    model = RemoteChatModel(scripted(handler).url)
    sampling = Sampling(max_new_tokens=40, stop=("\n", '"'))
    prompt = Prompt.user("给出标题。", answer_prefix='标题是"')
    assert ["".join(model.stream(prompt, sampling)) for _ in range(3)] == ["窗台上的猫", "一杯浓缩咖啡", "清晨的咖啡馆"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_truncated_stream_is_a_model_error_not_a_short_answer(scripted, chunked):
    def handler(h, body):
        sse_head(h, chunked)
        data = sse_chunk("Hello") + sse_chunk(" there")
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        h.wfile.flush()
        h.close_connection = True  # and no [DONE], no finish_reason, no terminating chunk

    s = scripted(handler)
    got = []
    with pytest.raises(ModelError, match="stopped answering mid-reply") as err:
        for delta in RemoteChatModel(s.url, timeout=5, retry=QUICK).stream(Prompt.user("hi"), GREEDY):
            got.append(delta)
    assert s.url in str(err.value) and "".join(got) == "Hello there"
    assert len(s.bodies) == 1  # a reply already on the page is never asked for again


def test_a_reply_ended_without_a_finish_reason_is_an_error_not_a_short_answer(scripted):
    def handler(h, body):  # what llama.cpp's server sends to a reply it interrupts
        sse_head(h)
        h.wfile.write(sse_chunk("Once upon") + b"data: [DONE]\n\n")

    s = scripted(handler)
    with pytest.raises(ModelError, match=r"ended the reply early \(\[DONE\] before any finish_reason\)"):
        list(RemoteChatModel(s.url, retry=QUICK).stream(Prompt.user("hi"), GREEDY))
    assert len(s.bodies) == 1


def test_http_errors_carry_the_servers_message(scripted):
    s = scripted(lambda h, b: send_json(h, 400, {"error": {"message": "max_tokens is too large", "type": "invalid"}}))
    with pytest.raises(ModelError, match=r"HTTP 400: max_tokens is too large"):
        list(RemoteChatModel(s.url, retry=QUICK).stream(Prompt.user("hi"), GREEDY))
    assert len(s.bodies) == 1


def test_a_silent_server_times_out(scripted):
    s = scripted(lambda h, b: time.sleep(3))
    start = time.monotonic()
    with pytest.raises(ModelError, match="within 0.5 s"):
        list(RemoteChatModel(s.url, timeout=0.5).stream(Prompt.user("hi"), GREEDY))
    assert time.monotonic() - start < 3


def test_a_reply_that_never_ends_meets_the_deadline(scripted):
    def handler(h, body):
        sse_head(h)
        try:
            for _ in range(100):
                h.wfile.write(sse_chunk("la "))
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client hung up, as it should

    s = scripted(handler)
    got = []
    with pytest.raises(ModelError, match="did not finish within 0.3 s"):
        for delta in RemoteChatModel(s.url, timeout=5, deadline=0.3).stream(Prompt.user("sing"), GREEDY):
            got.append(delta)
    assert got  # it was streaming; the deadline, not a read timeout, ended it


def test_no_server_and_unseen_images_are_clear_errors(scripted):
    url = closed_url()
    with pytest.raises(ModelError, match=rf"no server is available \(3 tries in .* s\): {url} \(connection refused\)"):
        RemoteChatModel(url, retry=QUICK)
    from PIL import Image

    s = scripted(lambda h, b: None)
    with pytest.raises(ModelError, match=r"text-only here; this prompt has images \(add \?images=on"):
        list(RemoteChatModel(s.url).stream(Prompt.user("look", Image.new("RGB", (4, 4))), GREEDY))


def test_the_api_key_comes_from_the_environment(scripted, monkeypatch):
    s = scripted(lambda h, b: sse_reply(h, ["ok"]))
    monkeypatch.delenv("COMPOSER_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    list(RemoteChatModel(s.url).stream(Prompt.user("hi"), GREEDY))
    monkeypatch.setenv("COMPOSER_API_KEY", "sk-composer")
    list(RemoteChatModel(s.url).stream(Prompt.user("hi"), GREEDY))
    monkeypatch.delenv("COMPOSER_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    list(RemoteChatModel(s.url).stream(Prompt.user("hi"), GREEDY))
    assert s.auth == ["Bearer sk-openai", "Bearer sk-composer", None]


def test_choose_reads_first_token_logprobs(scripted):
    top = [("B", -0.1), (" A", -2.0), ("A", -2.0), ("The", -3.0)]
    s = scripted(lambda h, b: logprobs_reply(h, top, usage={"prompt_tokens": 30, "completion_tokens": 1}))
    model = RemoteChatModel(s.url)
    scores = model.choose(Prompt.user("A or B?", answer_prefix="The answer is"), [" A", " B", " C"])
    assert scores[1] == -0.1 and math.isclose(scores[0], -2.0 + math.log(2)) and scores[2] == float("-inf")
    body = s.bodies[-1]
    assert (body["logprobs"], body["top_logprobs"], body["temperature"]) == (True, 20, 0.0)
    # room to write the prefix it is asked to begin with, then the answer
    assert body["messages"][-1]["content"].endswith("Begin your answer with: The answer is")
    assert body["max_tokens"] > len("The answer is".split()) + 1
    assert (model.usage.prefill, model.usage.decode) == (30, 1)


@pytest.mark.parametrize("echo", [["The", " answer", " is"], ["The answer is", "\n"], ["\n", "The answer", " is", " "]])
def test_choose_reads_the_logprobs_after_an_echoed_prefix(scripted, echo):
    s = scripted(lambda h, b: logprobs_reply(h, [(" B", -0.3), (" A", -1.5)], echo=echo))
    scores = RemoteChatModel(s.url).choose(Prompt.user("A or B?", answer_prefix="The answer is"), [" A", " B", " C"])
    assert scores == [-1.5, -0.3, float("-inf")]


def test_choose_on_a_reply_that_is_only_the_prefix_scores_nothing(scripted):
    s = scripted(lambda h, b: logprobs_reply(h, [("is", -0.1)], echo=["The", " answer", " "]))
    assert RemoteChatModel(s.url).choose(Prompt.user("A or B?", answer_prefix="The answer is"), [" A", " B"]) == \
        [float("-inf")] * 2


def test_choose_without_logprobs_says_so(scripted):
    s = scripted(lambda h, b: send_json(h, 200, {"choices": [{"message": {"content": "A"}}]}))
    with pytest.raises(ModelError, match="server does not return logprobs; choose needs them"):
        RemoteChatModel(s.url).choose(Prompt.user("A or B?"), [" A", " B"])


def test_usage_is_counted_exactly_under_concurrent_writers(scripted):
    s = scripted(lambda h, b: sse_reply(h, ["a", "b"], usage={"prompt_tokens": 3, "completion_tokens": 2}))
    model = RemoteChatModel(s.url)
    threads = [threading.Thread(target=lambda: [list(model.stream(Prompt.user("hi"), GREEDY)) for _ in range(10)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (model.usage.calls, model.usage.prefill, model.usage.decode) == (40, 120, 80)


def test_a_reply_opening_with_a_blank_line_is_not_cut_by_a_newline_stop(scripted):
    model = RemoteChatModel(scripted(lambda h, b: sse_reply(h, ["\n\n", "A cat", " asleep\n", "more"])).url)
    assert "".join(model.stream(Prompt.user("Caption?"), Sampling(stop=("\n",)))) == "A cat asleep"


# --- real llama.cpp servers ------------------------------------------------------------------------
def _need_server_extras():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("sse_starlette", reason="llama_cpp.server needs its [server] extras")


@pytest.fixture(scope="module")
def server():
    _need_server_extras()
    with LlamaServer() as s:
        yield s.url


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
def test_real_server_honours_stop_strings(server):
    model = RemoteChatModel(server)
    prompt = Prompt.user("Write two sentences about cats.")
    full = "".join(model.stream(prompt, Sampling(temperature=0, max_new_tokens=32)))
    word = next(w for w in full.split()[1:] if w.isalpha() and len(w) > 2)
    cut = "".join(model.stream(prompt, Sampling(temperature=0, max_new_tokens=32, stop=(word,))))
    assert word not in cut and full.startswith(cut) and len(cut) < len(full)


@pytest.mark.slow
def test_real_server_choose_scores_letter_options(server):
    model = RemoteChatModel(server)
    prompt = Prompt.user("Which one is a fruit?\nA. apple\nB. car\nC. stone\nAnswer with the letter.",
                         answer_prefix="The answer is")
    scores = model.choose(prompt, [" A", " B", " C"])
    assert len(scores) == 3 and all(math.isfinite(s) for s in scores)
    assert model.usage.prefill > 0 and model.usage.decode >= 1 and model.usage.calls == 1


UPLOADS = [ROOT / "assets/library/cat.jpg", ROOT / "assets/library/coffee.jpg"]
REQUEST = ComposeRequest("A morning café with a cat", outline=("The café", "The cat"), length=60, image_count=2)


@pytest.mark.slow
def test_compose_end_to_end_through_a_real_server(server):
    model = RemoteChatModel(server)
    events = list(compose(REQUEST, model, uploads=[load_image(p) for p in UPLOADS], seed=3))
    assert events[-1].kind == "done"
    article = events[-1].data["article"]
    assert isinstance(article, Article) and article.metadata["model"] == model.name
    assert any(e.kind == "text" for e in events) and events[-1].data["usage"]["calls"] > 0


@pytest.mark.slow
def test_two_servers_one_killed_mid_compose_loses_nothing(server):
    """Requests spread over both servers; once A is killed (between requests) every request goes
    to B, the compose finishes, and A is reported down."""
    with LlamaServer() as a:
        model = RemoteChatModel(f"{a.url},{server}#smollm2", timeout=30)
        for _ in range(2):
            assert "".join(model.stream(Prompt.user("Say hello."), Sampling(temperature=0, max_new_tokens=4)))
        assert [h["served"] for h in model.pool.health()] == [1, 1]
        events = []
        for event in compose(REQUEST, model, uploads=[load_image(p) for p in UPLOADS], seed=3):
            events.append(event)
            if event.kind == "segments":
                a.stop()  # the writing is done; placing, captions and choices are still to come
        assert not a.running and events[-1].kind == "done"
        article = events[-1].data["article"]
        text = [p for p in article.paragraphs if not p.is_heading]
        assert len(article.figures) == min(2, len(text)) and all(f.caption for f in article.figures)
        health = model.pool.health()
        assert health[1]["served"] >= 1 + 1 + 2 * len(article.figures)  # hello, place, caption and choice each
        assert "connection refused" in health[0]["last_error"]
        assert health[0]["served"] <= 2  # the write prompt may have gone to A before it died


@pytest.mark.slow
def test_a_reply_interrupted_by_llama_cpp_for_another_request_is_an_error(server):
    """llama.cpp's server, by default, cuts a streaming reply short when a second request comes."""
    with LlamaServer(interrupt_requests=True) as a:
        model = RemoteChatModel(a.url, timeout=30)
        first = model.stream(Prompt.user("Write a long story about a dragon."),
                             Sampling(temperature=0, max_new_tokens=400))
        got = [next(first)]
        second = threading.Thread(target=lambda: list(model.stream(Prompt.user("Hi."), GREEDY)))
        second.start()
        with pytest.raises(ModelError, match="ended the reply early"):
            for delta in first:
                got.append(delta)
        second.join(60)
        assert got


@pytest.mark.slow
def test_a_killed_server_is_a_model_error_naming_it(server):
    with LlamaServer() as a:
        model = RemoteChatModel(a.url, timeout=10, retry=QUICK)
        long = Prompt.user("Write a very long story about a dragon, with many chapters.")
        stream = model.stream(long, Sampling(temperature=0.8, max_new_tokens=1500, seed=1))
        assert next(stream)  # the reply has begun
        a.stop()
        start = time.monotonic()
        with pytest.raises(ModelError, match="stopped answering mid-reply"):
            for _ in stream:
                pass
        assert time.monotonic() - start < 10
        with pytest.raises(ModelError, match=f"no server is available .*{a.url} \\(connection refused\\)"):
            list(model.stream(Prompt.user("hi"), GREEDY))


# --- what a server sends is untrusted (issue 17, cases 5 and 8) ----------------------------------
def test_lone_surrogates_in_a_stream_become_replacement_characters(scripted):
    """JSON may escape half a UTF-16 pair ("\\ud800"); Python decodes it to a string that no file
    or terminal can take. The stream goes on with U+FFFD in its place."""
    def handler(h, body):
        sse_head(h)
        h.wfile.write(b'data: {"choices": [{"delta": {"content": "caf\\ud800 ok \\udfff"}, '
                      b'"finish_reason": null}]}\n\n')
        h.wfile.write(b'data: {"choices": [{"delta": {"content": " \\ud83d\\ude00"}, "finish_reason": "stop"}]}\n\n')
        h.wfile.write(b"data: [DONE]\n\n")

    text = "".join(RemoteChatModel(scripted(handler).url, retry=QUICK).stream(Prompt.user("hi"), GREEDY))
    text.encode("utf-8")
    assert text == "caf\ufffd ok \ufffd \U0001F600"  # a whole pair is still one character


def test_lone_surrogates_in_a_servers_error_message_are_replaced(scripted):
    s = scripted(lambda h, b: send_json(h, 400, {"error": {"message": "bad \ud800 token"}}))
    with pytest.raises(ModelError) as err:
        list(RemoteChatModel(s.url, retry=QUICK).stream(Prompt.user("hi"), GREEDY))
    str(err.value).encode("utf-8")
    assert "bad \ufffd token" in str(err.value)


def test_a_server_that_ignores_max_tokens_is_cut_at_the_budget_by_the_client(scripted):
    """A stream that never ends was cut only by the 900 s deadline, though the request asked for
    24 tokens: the client counts what arrives (a chunk is a token or more) and ends the reply."""
    sent = []

    def handler(h, body):
        sse_head(h)
        try:
            for _ in range(2000):
                h.wfile.write(sse_chunk("la "))
                h.wfile.flush()
                sent.append(1)
                time.sleep(0.002)
        except OSError:
            pass  # the client hung up, as it should

    start = time.monotonic()
    text = "".join(RemoteChatModel(scripted(handler).url, timeout=5).stream(Prompt.user("sing"), GREEDY))
    assert time.monotonic() - start < 3
    assert text.startswith("la la") and text.count("la") <= GREEDY.max_new_tokens + 1
    time.sleep(0.2)
    assert len(sent) < 500  # the connection was closed, not left streaming for nobody


def test_a_huge_chunk_counts_against_the_budget_too(scripted):
    def handler(h, body):
        sse_head(h)
        try:
            for _ in range(200):
                h.wfile.write(sse_chunk("x" * 10_000))
                h.wfile.flush()
        except OSError:
            pass

    text = "".join(RemoteChatModel(scripted(handler).url, timeout=5).stream(Prompt.user("hi"), GREEDY))
    assert len(text) <= 64 * GREEDY.max_new_tokens + 10_000


def test_an_event_line_longer_than_the_bound_is_an_error_not_read_whole(scripted):
    from composer.model import remote

    def handler(h, body):
        sse_head(h)
        try:
            h.wfile.write(b'data: {"choices": [{"delta": {"content": "')
            for _ in range(64):
                h.wfile.write(b"y" * (1 << 20))  # 64 MiB, no newline
            h.wfile.write(b'"}}]}\n\n')
        except OSError:
            pass

    with pytest.raises(ModelError, match="longer than"):
        list(RemoteChatModel(scripted(handler).url, timeout=5, retry=QUICK).stream(Prompt.user("hi"), GREEDY))
    assert remote.MAX_EVENT_BYTES <= 8 << 20
