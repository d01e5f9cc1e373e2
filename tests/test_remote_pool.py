"""Several servers behind one openai: model: spreading, failover, retries and back-off, against
real loopback HTTP servers that answer what each test needs."""
from __future__ import annotations

import random
import threading

import pytest

from composer.model.base import ModelError, Prompt, Sampling
from composer.model.remote import RemoteChatModel
from composer.model.remote_pool import RetryPolicy
from composer.model.remote_testing import closed_url, send_json, sse_chunk, sse_head, sse_reply

GREEDY = Sampling(temperature=0, max_new_tokens=8)
QUICK = RetryPolicy(attempts=4, total_s=5, base_s=0.01, cap_s=0.05)
HI = Prompt.user("hi")


def answers(*codes):
    """A handler answering each chat request with the next status (200: a short reply)."""
    queue = list(codes)

    def handler(h, body):
        code = queue.pop(0) if queue else 200
        if code == 200:
            sse_reply(h, ["ok"])
        else:
            send_json(h, code, {"error": {"message": f"scripted {code}"}},
                      {"Retry-After": "0"} if code == 429 else None)

    return handler


def say(model):
    return "".join(model.stream(HI, GREEDY))


def test_503_twice_then_200_is_retried_on_the_same_server(scripted):
    s = scripted(answers(503, 503, 200))
    model = RemoteChatModel(s.url, retry=QUICK)
    assert say(model) == "ok" and len(s.bodies) == 3
    assert model.pool.health()[0]["last_error"] == "HTTP 503: scripted 503"


@pytest.mark.parametrize("code", [429, 502, 504])
def test_busy_and_gateway_errors_are_retried(scripted, code):
    s = scripted(answers(code, 200))
    assert say(RemoteChatModel(s.url, retry=QUICK)) == "ok" and len(s.bodies) == 2


@pytest.mark.parametrize("code", [400, 401, 404, 422])
def test_other_client_errors_are_not_retried(scripted, code):
    s = scripted(answers(code, 200))
    with pytest.raises(ModelError, match=f"answered HTTP {code}: scripted {code}"):
        say(RemoteChatModel(s.url, retry=QUICK))
    assert len(s.bodies) == 1


def test_retries_are_bounded_and_the_error_names_the_server(scripted):
    s = scripted(answers(*[503] * 10))
    expected = rf"no server is available \(4 tries in .*\): {s.url} \(HTTP 503: scripted 503\)"
    with pytest.raises(ModelError, match=expected):
        say(RemoteChatModel(s.url, retry=QUICK))
    assert len(s.bodies) == 4


def test_retries_stop_at_the_total_time_budget(scripted):
    s = scripted(answers(*[503] * 10))
    slow_backoff = RetryPolicy(attempts=10, total_s=0.3, base_s=0.2, cap_s=0.4)
    with pytest.raises(ModelError, match="no server is available"):
        say(RemoteChatModel(s.url, retry=slow_backoff))
    assert 1 < len(s.bodies) < 10


def test_a_refused_server_is_skipped_and_marked_down(scripted):
    down, up = closed_url(), scripted(answers())
    model = RemoteChatModel(f"{down},{up.url}", retry=QUICK)  # /v1/models: from the first healthy one
    assert model.model == "scripted"
    assert [say(model) for _ in range(3)] == ["ok"] * 3
    assert len(up.bodies) == 3
    a, b = model.pool.health()
    assert a["last_error"] == "connection refused" and a["served"] == 0 and b["served"] == 4


def test_a_5xx_moves_the_request_to_another_server_even_a_500(scripted):
    broken, fine = scripted(answers(*[500] * 10)), scripted(answers())
    long_down = RetryPolicy(attempts=4, total_s=5, base_s=4, cap_s=8)  # down for 2-4 s: the test's span
    model = RemoteChatModel(f"{broken.url},{fine.url}#m", retry=long_down)
    assert [say(model) for _ in range(3)] == ["ok"] * 3
    assert len(broken.bodies) == 1 and len(fine.bodies) == 3  # down for its back-off after the first 500


def test_a_500_from_the_only_server_is_not_repeated(scripted):
    s = scripted(answers(*[500] * 10))
    with pytest.raises(ModelError, match=r"HTTP 500: scripted 500"):
        say(RemoteChatModel(s.url, retry=QUICK))
    assert len(s.bodies) == 1


def test_all_servers_down_is_one_error_naming_each(scripted):
    a, b = closed_url(), scripted(answers(*[503] * 10))
    with pytest.raises(ModelError) as err:
        say(RemoteChatModel(f"{a},{b.url}#m", retry=QUICK))
    message = str(err.value)
    assert message.startswith("no server is available (4 tries")
    assert f"{a} (connection refused)" in message and f"{b.url} (HTTP 503: scripted 503)" in message


def test_a_silent_server_is_not_retried_but_kept_away_from_the_next_requests(scripted):
    import time

    hung, fine = scripted(lambda h, b: time.sleep(2)), scripted(answers())
    long_down = RetryPolicy(attempts=4, total_s=5, base_s=4, cap_s=8)
    model = RemoteChatModel(f"{hung.url},{fine.url}#m", timeout=0.3, retry=long_down)
    with pytest.raises(ModelError, match=f"the server at {hung.url} did not answer within 0.3 s"):
        say(model)
    assert [say(model) for _ in range(2)] == ["ok", "ok"]
    assert (len(hung.bodies), len(fine.bodies)) == (1, 2)


def test_models_are_listed_by_the_first_healthy_server(scripted):
    b, c = scripted(answers(), models=("model-b",)), scripted(answers(), models=("model-c",))
    assert RemoteChatModel(f"{closed_url()},{b.url},{c.url}", retry=QUICK).model == "model-b"
    assert (b.gets, c.gets) == (1, 0)


def test_sequential_requests_alternate_and_concurrent_ones_go_to_the_least_busy(scripted):
    release = threading.Event()
    started = threading.Event()

    def slow(h, body):
        sse_head(h)
        h.wfile.write(sse_chunk("first"))
        h.wfile.flush()
        started.set()
        release.wait(10)
        h.wfile.write(sse_chunk(" done", finish="stop") + b"data: [DONE]\n\n")

    a, b = scripted(slow), scripted(answers())
    model = RemoteChatModel(f"{a.url},{b.url}#m", retry=QUICK)
    long = model.stream(HI, GREEDY)
    assert next(long) == "first" and started.wait(5)  # A holds one request in flight
    assert [say(model) for _ in range(3)] == ["ok"] * 3  # so B, the least busy, takes the rest
    assert (len(a.bodies), len(b.bodies)) == (1, 3)
    release.set()
    assert "".join(long) == " done"
    assert [h["outstanding"] for h in model.pool.health()] == [0, 0]

    c, d = scripted(answers()), scripted(answers())
    model = RemoteChatModel(f"{c.url},{d.url}#m", retry=QUICK)
    for _ in range(4):
        say(model)
    assert (len(c.bodies), len(d.bodies)) == (2, 2)


def test_complete_sends_its_prompts_at_once_over_the_servers(scripted):
    gate = threading.Barrier(2, timeout=5)  # both requests must be in flight together to pass

    def together(h, body):
        gate.wait()
        sse_reply(h, [body["messages"][-1]["content"].upper()])

    a, b = scripted(together), scripted(together)
    model = RemoteChatModel(f"{a.url},{b.url}#m", retry=QUICK)
    assert model.complete([Prompt.user("one"), Prompt.user("two")], GREEDY) == ["ONE", "TWO"]
    assert (len(a.bodies), len(b.bodies)) == (1, 1)


def test_a_stream_cut_after_its_first_token_is_an_error_and_not_retried(scripted):
    def cut(h, body):
        sse_head(h)
        h.wfile.write(sse_chunk("Once"))
        h.wfile.flush()
        h.close_connection = True

    a, b = scripted(cut), scripted(answers())
    model = RemoteChatModel(f"{a.url},{b.url}#m", retry=QUICK)
    got = []
    with pytest.raises(ModelError, match=f"the server at {a.url} stopped answering mid-reply"):
        for delta in model.stream(HI, GREEDY):
            got.append(delta)
    assert got == ["Once"] and (len(a.bodies), len(b.bodies)) == (1, 0)


def test_a_stream_cut_before_its_first_token_goes_to_another_server(scripted):
    def cut(h, body):
        sse_head(h)  # the headers, then the server dies while reading the prompt
        h.close_connection = True

    a, b = scripted(cut), scripted(answers())
    model = RemoteChatModel(f"{a.url},{b.url}#m", retry=QUICK)
    assert say(model) == "ok" and (len(a.bodies), len(b.bodies)) == (1, 1)
    assert model.pool.health()[0]["last_error"] == "stopped answering before the first token"
    assert model.usage.calls == 1


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    rng = random.Random(1)
    for failures, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.backoff(failures, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays) and len(set(delays)) > 1
